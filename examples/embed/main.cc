// Embeds a text and an image with mmembed's Embedder and prints their cosine similarity.
//   embed_example MODEL_DIR IMAGE TEXT
#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

#include <mmembed/embedder.h>
#include <mmembed/error.h>
#include <mmembed/version.h>

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s MODEL_DIR IMAGE TEXT\n", argv[0]);
    return 2;
  }
  try {
    const auto embedder = mmembed::Embedder::load(argv[1]);
    const std::vector<std::string> texts = {argv[3]};
    const std::vector<mmembed::Image> images = {mmembed::Image::read(argv[2])};
    const mmembed::Embeddings t = embedder.embed_texts(texts);
    const mmembed::Embeddings i = embedder.embed_images(images);
    // Both rows are L2-normalised, so their dot product is the cosine.
    const auto a = t.row(0), b = i.row(0);
    const double cosine = std::inner_product(a.begin(), a.end(), b.begin(), 0.0);
    std::printf("mmembed %s, %s model, %zu dimensions\n", MMEMBED_VERSION,
                embedder.info().family.c_str(), t.dim);
    std::printf("cosine(text, image) = %.6f\n", cosine);
  } catch (const mmembed::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
