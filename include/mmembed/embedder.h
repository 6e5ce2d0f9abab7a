// The Embedder: one loaded model (BridgeTower, CLIP, sentence-transformers) behind one interface
// that takes texts, images and image-text pairs and returns embeddings.
//
//   auto embedder = mmembed::Embedder::load("BridgeTower/bridgetower-large-itm-mlm-itc-dir");
//   std::vector<std::string> texts = {"a photo of a cat"};
//   mmembed::Embeddings t = embedder.embed_texts(texts);               // [1, 512], L2-normalised
//   std::vector<mmembed::Image> images = {mmembed::Image::read("cat.jpg")};
//   mmembed::Embeddings j = embedder.embed_pairs(images, texts);       // cross_embeds
//   std::vector<mmembed::MatchScore> m = embedder.match(images, texts); // ITM probability
//
// What each model family returns (ModelInfo::family):
//   "bridgetower"  texts: ITC text_embeds (text tower only); images: ITC image_embeds (vision
//                  tower only); pairs: ITC cross_embeds (the joint embedding); match: ITM.
//                  Needs a checkpoint with ITC heads (bridgetower-large-itm-mlm-itc) for the
//                  embeddings; the base checkpoints have none and refuse with Unsupported.
//   "clip"         texts / images: the projected, L2-normalised text / image embeddings; pairs
//                  are unsupported; match: cosine similarity and logit_scale.
//   "sentence-transformers"  texts only, pooled and normalised as the model's modules say.
// Embeddings are float32, row-major; row i belongs to input i. A model's results do not depend
// on how inputs are grouped into batches (within 1e-6).
//
// Errors: the first invalid input throws (InvalidArgument naming its index and the problem: an
// empty text, a text over the length limit under TextOverflow::kError, an image too large for
// the pixel limit), before any model work. Callers that want one bad item to fail alone (the
// batch `embed` command) validate and decode per item first.
//
// Thread-safety: an Embedder is immutable after load(); every const method may run from several
// threads at once. The compute threads are process-wide (EmbedderOptions::threads).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace mmembed {

// Pillow's Image.MAX_IMAGE_PIXELS: larger images are refused before any pixel is decoded.
inline constexpr std::int64_t kDefaultMaxImagePixels = 89'478'485;

// A decoded 8-bit RGB image, as `PIL.Image.open(f).convert("RGB")` gives it.
struct Image {
  std::int64_t height = 0;
  std::int64_t width = 0;
  std::vector<std::uint8_t> rgb;  // height * width * 3 bytes, row-major, channels last
  std::string name;               // the file (or caller's name), used in error messages

  // Reads and decodes JPEG, PNG, WebP or GIF (by content, not by extension). Throws IoError
  // (unreadable), FormatError (corrupt or truncated), Unsupported (BMP/TIFF),
  // InvalidArgument (over max_pixels; 0 disables the check; negative max_pixels). Messages
  // start with the path.
  static Image read(const std::string& path, std::int64_t max_pixels = kDefaultMaxImagePixels);
  static Image decode(const void* data, std::size_t size, const std::string& name,
                      std::int64_t max_pixels = kDefaultMaxImagePixels);
};

enum class InputKind { kText, kImage, kPair };
const char* input_kind_name(InputKind kind);  // "text", "image", "pair"
// The kind of that name; InvalidArgument ("'x' is not image, text or pair") otherwise.
InputKind parse_input_kind(const std::string& name);

// What to do with a text longer than the model's token limit.
enum class TextOverflow {
  kTruncate,  // cut it (the reference's truncation=True); Embeddings::truncated_tokens says how
              // much
  kError,     // throw InvalidArgument naming the text
};

// Which image processors to reproduce (docs/numerics.md "Image backends").
enum class ImageBackend {
  // Pillow resize: transformers 4.x's processors, and transformers 5's with backend="pil" (or
  // without torchvision installed). Bit-exact pixels.
  kPil,
  // transformers 5's default processors when torchvision is installed: torch's uint8 antialiased
  // resize, torchvision's center crop, rescale fused into normalize. Bit-exact pixels against
  // torch on the CPU.
  kTorchvision,
};
const char* image_backend_name(ImageBackend backend);  // "pil", "torchvision"
// "pil" or "torchvision"; InvalidArgument otherwise.
ImageBackend parse_image_backend(const std::string& name);

// What embed_pairs returns for a BridgeTower model (other families take kDefault only).
enum class PairOutput {
  kDefault,   // the ITC joint embedding (cross_embeds), L2-normalised; needs the ITC heads
  kPooled,    // BridgeTowerModel's pooler_output [2H]: concat(text pool, image pool), raw
  kTextCls,   // BridgeTowerModel's text_features[:, 0] [H]: the text stream's CLS row after
              // the cross-modal layers, raw
  kImageCls,  // BridgeTowerModel's image_features[:, 0] [H], raw
};
// "cross", "pooled", "text-cls", "image-cls"; parse_pair_output throws InvalidArgument for
// another name.
const char* pair_output_name(PairOutput output);
PairOutput parse_pair_output(const std::string& name);

// The type the models' linear layers keep their weights in and multiply with (docs/numerics.md,
// "Reduced precision", has the accuracy measured against fp32).
enum class ModelDtype {
  kFp32,  // float32 everywhere: agrees with the reference to about 1e-6
  kBf16,  // bfloat16 weight matrices; each product's input rounded to bfloat16, sums in float32;
          // embeddings, norms, attention, biases and activations in float32. Half the weights'
          // memory; the products run on AVX-512 BF16 or AMX where the CPU has them (oneDNN).
  kInt8,  // int8 weight matrices with one float scale per output row; each product's input rows
          // quantized on the fly (symmetric, one scale per row), products summed exactly in
          // int32 (VNNI / AMX), then rescaled; the rest in float32 as for bf16. A quarter of the
          // weights' memory.
};
// "fp32", "bf16", "int8"; parse_model_dtype also takes "float32" and "bfloat16", and throws
// InvalidArgument for anything else.
const char* model_dtype_name(ModelDtype dtype);
ModelDtype parse_model_dtype(const std::string& name);

// Largest EmbedderOptions::batch_size: a batch's activations grow with it, and 65536 images or
// texts in one model call is already far past the memory of any machine the batch would fit.
inline constexpr std::size_t kMaxBatchSize = 65536;

struct EmbedderOptions {
  // Compute threads for the whole process (kernels and GEMM); 0 = all hardware threads.
  // 0 to 1024 (kMaxThreads); Embedder::load throws InvalidArgument outside that range.
  int threads = 0;
  // Largest number of inputs run through the model at once (memory bound, not a result knob).
  // 1 to kMaxBatchSize; Embedder::load throws InvalidArgument outside that range.
  std::size_t batch_size = 8;
  TextOverflow text_overflow = TextOverflow::kTruncate;
  ImageBackend image_backend = ImageBackend::kPil;
  // BridgeTower only: which output embed_pairs gives. Any output but kDefault works for every
  // BridgeTower checkpoint, those without ITC heads (bridgetower-base) included.
  PairOutput pair_output = PairOutput::kDefault;
  // Precision of the linear layers (Unsupported at load when this build's GEMM backend has no
  // bf16 product).
  ModelDtype dtype = ModelDtype::kFp32;
};

struct ModelInfo {
  std::string family;               // "bridgetower", "clip", "sentence-transformers"
  std::string model_type;           // config.json model_type ("bridgetower", "clip", "bert", ...)
  std::string path;                 // the model folder
  std::size_t dim = 0;              // embedding width
  std::size_t max_text_tokens = 0;  // special tokens included
  bool text = false, image = false, pair = false, match = false;  // supported calls
  // The shape of one image's ImageMatchFeatures when the model can match (BridgeTower: [K, Ni,
  // H], the inputs of its K cross-modal layers; CLIP: [dim], the image embedding); empty
  // otherwise.
  std::vector<std::int64_t> match_features_shape;
  // Why a call is unsupported, e.g. "the checkpoint has no ITC heads (itc_text_head ...)".
  std::string unsupported_reason;
  bool supports(InputKind kind) const;
};

struct Embeddings {
  std::size_t rows = 0;
  std::size_t dim = 0;
  std::vector<float> data;  // rows * dim, row-major
  // Per row: token ids cut from a text input (0 when nothing was cut or the row has no text).
  std::vector<int> truncated_tokens;

  std::span<const float> row(std::size_t i) const { return {data.data() + i * dim, dim}; }
};

// How well image i matches text i.
struct MatchScore {
  // BridgeTower: softmax(itm_logits)[1], the image-text-matching head's probability.
  // CLIP: absent (CLIP has no matching head; use `cosine`).
  std::optional<double> probability;
  std::optional<double> logit_no_match, logit_match;  // BridgeTower ITM logits
  // Cosine of the image and text embeddings when the model has them (BridgeTower ITC, CLIP).
  std::optional<double> cosine;
  // CLIP: cosine * exp(logit_scale), the logit the zero-shot softmax uses.
  std::optional<double> scaled_logit;
  int truncated_tokens = 0;
};

// The image side of match() for one image, computed once so that the image can be matched with
// many texts (re-ranking) by running only the text's side and what joins the two: for
// BridgeTower its vision tower's outputs as its cross-modal layers take them (about 11 MB per
// image for bridgetower-large), then per text the text tower once and the cross-modal layers per
// image; for CLIP the image embedding. Plain data, so that a caller can keep it on disk
// (retrieval's feature cache); shape is ModelInfo::match_features_shape.
struct ImageMatchFeatures {
  std::vector<std::int64_t> shape;
  std::vector<float> data;
};

namespace embed {
class ModelAdapter;
struct Prepared;
}  // namespace embed

// Inputs converted for the model by Embedder::prepare (tokens, pixels), ready for
// Embedder::embed_prepared. Cheap to move; immutable.
class PreparedBatch {
 public:
  InputKind kind() const { return kind_; }
  std::size_t size() const { return rows_; }

 private:
  friend class Embedder;
  InputKind kind_ = InputKind::kText;
  std::size_t rows_ = 0;
  std::vector<std::shared_ptr<const embed::Prepared>> parts_;  // one per model batch
};

class Embedder {
 public:
  // `model` is a model folder (config.json + weights + tokenizer + preprocessor files). The
  // family is read from it (modules.json -> sentence-transformers, else config.json
  // model_type). Throws IoError / FormatError naming the missing or malformed file,
  // Unsupported for a model type this build does not run.
  static Embedder load(const std::string& model, const EmbedderOptions& options = {});

  const ModelInfo& info() const;
  const EmbedderOptions& options() const;

  Embeddings embed_texts(std::span<const std::string> texts) const;
  Embeddings embed_images(std::span<const Image> images) const;
  // Joint embedding of image i with text i (images.size() == texts.size()).
  Embeddings embed_pairs(std::span<const Image> images, std::span<const std::string> texts) const;
  // Image i against text i (images.size() == texts.size()).
  std::vector<MatchScore> match(std::span<const Image> images,
                                std::span<const std::string> texts) const;

  // match() in two steps for one text against many images: image_match_features() runs the
  // image side (its results can be kept and reused), match_text() the rest.
  // match_text(t, image_match_features(images)) equals match(images, {t, t, ...}) (within 1e-6).
  // InvalidArgument for features of another shape (naming their index) or a blank text.
  std::vector<ImageMatchFeatures> image_match_features(std::span<const Image> images) const;
  std::vector<MatchScore> match_text(const std::string& text,
                                     std::span<const ImageMatchFeatures> images) const;

  // The same work in two steps, so that the CPU work before the model (checks, tokenizing,
  // resizing, normalizing) can run on another thread than the model: prepare() does it and
  // throws what embed_* would throw for bad inputs; embed_prepared() runs the model.
  // embed_prepared(prepare(k, images, texts)) equals the embed_* call of kind k. For kText pass
  // no images, for kImage no texts.
  PreparedBatch prepare(InputKind kind, std::span<const Image> images,
                        std::span<const std::string> texts) const;
  Embeddings embed_prepared(const PreparedBatch& batch) const;

  // The family adapter (for the layers above: classification, benchmarks).
  const embed::ModelAdapter& adapter() const { return *adapter_; }

 private:
  Embedder() = default;
  std::shared_ptr<const embed::ModelAdapter> adapter_;
  EmbedderOptions options_;
};

// A content digest of a model folder, its identity wherever it lives ("sha256:<hex>"): SHA-256
// over the relative names and contents of its .json and .txt files (config, tokenizer,
// preprocessor, sentence-transformers modules) and, for its weight files (.safetensors, .bin,
// .pt, .model), their sizes and first and last MiB. Dot files, dot folders and other files
// (model cards, images) do not count. IoError when the folder cannot be read.
std::string model_digest(const std::string& model_dir);

}  // namespace mmembed
