// The Embedder facade: finds the model family, checks inputs, splits work into batches.
#include "mmembed/embedder.h"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "core/check.h"
#include "core/file.h"
#include "core/thread_pool.h"
#include "embed/adapter.h"
#include "kernels/gemm.h"
#include "kernels/parallel.h"
#include "mmembed/error.h"
#include "vision/decode.h"
#include "vision/processor.h"

namespace mmembed {

namespace fs = std::filesystem;

// ---- Image ----

namespace {
Image from_decoded(vision::DecodedImage&& decoded, const std::string& name) {
  Image image;
  image.height = decoded.rgb.dim(0);
  image.width = decoded.rgb.dim(1);
  const auto* px = decoded.rgb.data<std::uint8_t>();
  image.rgb.assign(px, px + decoded.rgb.numel());
  image.name = name;
  return image;
}

// A negative limit would silently disable the check, as 0 does on purpose.
void check_max_pixels(std::int64_t max_pixels, const std::string& name) {
  MMEMBED_CHECK(max_pixels >= 0, InvalidArgument, name, ": max_pixels ", max_pixels,
                " is negative (0 disables the limit)");
}
}  // namespace

Image Image::read(const std::string& path, std::int64_t max_pixels) {
  check_max_pixels(max_pixels, path);
  vision::DecodeOptions options;
  options.max_pixels = max_pixels;
  return from_decoded(vision::read_image(path, options), path);
}

Image Image::decode(const void* data, std::size_t size, const std::string& name,
                    std::int64_t max_pixels) {
  check_max_pixels(max_pixels, name);
  vision::DecodeOptions options;
  options.max_pixels = max_pixels;
  return from_decoded(
      vision::decode_image(static_cast<const std::uint8_t*>(data), size, name, options), name);
}

const char* image_backend_name(ImageBackend backend) {
  return backend == ImageBackend::kTorchvision ? "torchvision" : "pil";
}

const char* pair_output_name(PairOutput output) {
  switch (output) {
    case PairOutput::kDefault:
      return "cross";
    case PairOutput::kPooled:
      return "pooled";
    case PairOutput::kTextCls:
      return "text-cls";
    case PairOutput::kImageCls:
      return "image-cls";
  }
  return "?";
}

PairOutput parse_pair_output(const std::string& name) {
  for (PairOutput o :
       {PairOutput::kDefault, PairOutput::kPooled, PairOutput::kTextCls, PairOutput::kImageCls}) {
    if (name == pair_output_name(o)) return o;
  }
  throw InvalidArgument(str_cat("pair output '", escape_for_message(name),
                                "': expected cross, pooled, text-cls or image-cls"));
}

const char* model_dtype_name(ModelDtype dtype) {
  return dtype == ModelDtype::kBf16 ? "bf16" : dtype == ModelDtype::kInt8 ? "int8" : "fp32";
}

ModelDtype parse_model_dtype(const std::string& name) {
  if (name == "fp32" || name == "float32") return ModelDtype::kFp32;
  if (name == "bf16" || name == "bfloat16") return ModelDtype::kBf16;
  if (name == "int8") return ModelDtype::kInt8;
  throw InvalidArgument(str_cat("dtype must be \"fp32\", \"bf16\" or \"int8\", got \"",
                                escape_for_message(name), "\""));
}

ImageBackend parse_image_backend(const std::string& name) {
  if (name == "pil") return ImageBackend::kPil;
  if (name == "torchvision") return ImageBackend::kTorchvision;
  throw InvalidArgument(
      str_cat("image backend must be \"pil\" or \"torchvision\", got \"", name, "\""));
}

bool ModelInfo::supports(InputKind kind) const {
  switch (kind) {
    case InputKind::kText:
      return text;
    case InputKind::kImage:
      return image;
    case InputKind::kPair:
      return pair;
  }
  return false;
}

// ---- adapter helpers ----

namespace embed {

bool ModelFolder::has_file(const std::string& name) const {
  std::error_code ec;
  // exists, not is_regular_file: a FIFO or folder in its place is refused by the reader, by
  // name, instead of being reported as missing.
  return fs::exists(fs::path(dir) / name, ec);
}

std::string ModelFolder::file(const std::string& name) const {
  return (fs::path(dir) / name).string();
}

io::LoadOptions load_options(const EmbedderOptions& options) {
  io::LoadOptions o;
  o.matrix_dtype = options.dtype == ModelDtype::kBf16   ? DType::BF16
                   : options.dtype == ModelDtype::kInt8 ? DType::I8
                                                        : DType::F32;
  return o;
}

void throw_unsupported(const ModelInfo& i, const std::string& call) {
  throw Unsupported(str_cat(i.path, ": this ", i.family, " model does not support ", call,
                            i.unsupported_reason.empty() ? "" : ": ", i.unsupported_reason));
}

void ModelAdapter::unsupported(const char* call) const {
  throw_unsupported(info(), call);
}

void ModelAdapter::unsupported(InputKind kind) const {
  unsupported(str_cat(input_kind_name(kind), " embeddings").c_str());
}

Embeddings ModelAdapter::embed_texts(std::span<const std::string>) const {
  unsupported(InputKind::kText);
}
Embeddings ModelAdapter::embed_images(std::span<const Image>) const {
  unsupported(InputKind::kImage);
}
Embeddings ModelAdapter::embed_pairs(std::span<const Image>, std::span<const std::string>) const {
  unsupported(InputKind::kPair);
}
std::vector<MatchScore> ModelAdapter::match(std::span<const Image>,
                                            std::span<const std::string>) const {
  unsupported("image-text matching");
}
std::vector<ImageMatchFeatures> ModelAdapter::image_match_features(std::span<const Image>) const {
  unsupported("image-text matching");
}
std::vector<MatchScore> ModelAdapter::match_text(const std::string&,
                                                 std::span<const ImageMatchFeatures>) const {
  unsupported("image-text matching");
}

namespace {
struct CopiedInputs final : Prepared {
  std::vector<Image> images;
  std::vector<std::string> texts;
};
}  // namespace

std::unique_ptr<Prepared> ModelAdapter::prepare(InputKind kind, std::span<const Image> images,
                                                std::span<const std::string> texts) const {
  auto p = std::make_unique<CopiedInputs>();
  p->kind = kind;
  p->rows = kind == InputKind::kText ? texts.size() : images.size();
  p->images.assign(images.begin(), images.end());
  p->texts.assign(texts.begin(), texts.end());
  return p;
}

Embeddings ModelAdapter::run(const Prepared& prepared) const {
  const auto* p = dynamic_cast<const CopiedInputs*>(&prepared);
  MMEMBED_ASSERT(p != nullptr);  // an adapter overriding prepare() overrides run() too
  switch (p->kind) {
    case InputKind::kText:
      return embed_texts(p->texts);
    case InputKind::kImage:
      return embed_images(p->images);
    case InputKind::kPair:
      return embed_pairs(p->images, p->texts);
  }
  MMEMBED_ASSERT(false);
  return {};
}

Tensor image_view(const Image& image) {
  return Tensor::borrow(image.rgb.data(), DType::U8, {image.height, image.width, 3});
}

Tensor preprocess_images(const vision::ImageProcessor& processor, std::span<const Image> images) {
  std::vector<Tensor> views;
  views.reserve(images.size());
  for (const Image& im : images)
    views.push_back(image_view(im));
  return processor.preprocess(views).pixel_values;
}

vision::ImageBackend to_vision_backend(ImageBackend backend) {
  return backend == ImageBackend::kTorchvision ? vision::ImageBackend::Torchvision
                                               : vision::ImageBackend::Pil;
}

Embeddings to_embeddings(const Tensor& rows) {
  MMEMBED_ASSERT(rows.shape().size() == 2 && rows.dtype() == DType::F32);
  Embeddings e;
  e.rows = static_cast<std::size_t>(rows.dim(0));
  e.dim = static_cast<std::size_t>(rows.dim(1));
  const float* p = rows.data<float>();
  e.data.assign(p, p + rows.numel());
  e.truncated_tokens.assign(e.rows, 0);
  return e;
}

void append_rows(Embeddings& into, const Embeddings& more) {
  if (into.rows == 0 && into.data.empty()) into.dim = more.dim;
  MMEMBED_ASSERT(into.dim == more.dim);
  into.rows += more.rows;
  into.data.insert(into.data.end(), more.data.begin(), more.data.end());
  into.truncated_tokens.insert(into.truncated_tokens.end(), more.truncated_tokens.begin(),
                               more.truncated_tokens.end());
}

}  // namespace embed

// ---- Embedder ----

namespace {

enum class Family { kBridgeTower, kClip, kSentence };

Family detect_family(const embed::ModelFolder& folder) {
  if (folder.has_file("modules.json")) return Family::kSentence;
  const std::string type = folder.config.optional<std::string>("model_type", "");
  if (type == "bridgetower") return Family::kBridgeTower;
  if (type == "clip") return Family::kClip;
  throw Unsupported(
      str_cat(folder.file("config.json"), ": model_type '", type,
              "' is not supported (supported: bridgetower, clip, and sentence-transformers folders "
              "with a modules.json)"));
}

std::unique_ptr<embed::ModelAdapter> make_adapter(Family family, const embed::ModelFolder& folder,
                                                  const EmbedderOptions& options) {
  switch (family) {
    case Family::kBridgeTower:
      return embed::make_bridgetower_adapter(folder, options);
    case Family::kClip:
      return embed::make_clip_adapter(folder, options);
    case Family::kSentence:
      return embed::make_sentence_adapter(folder, options);
  }
  throw Unsupported(str_cat(folder.dir, ": this build has no ",
                            family == Family::kClip ? "CLIP" : "sentence-transformers",
                            " model support yet"));
}

bool blank(const std::string& text) {
  return std::all_of(text.begin(), text.end(),
                     [](unsigned char c) { return std::isspace(c) != 0; });
}

void check_texts(std::span<const std::string> texts) {
  for (std::size_t i = 0; i < texts.size(); ++i) {
    MMEMBED_CHECK(!blank(texts[i]), InvalidArgument, "text ", i,
                  texts[i].empty() ? " is empty" : " is only whitespace",
                  ": there is nothing to embed");
  }
}

void check_images(std::span<const Image> images) {
  for (std::size_t i = 0; i < images.size(); ++i) {
    const Image& im = images[i];
    const std::string name = im.name.empty() ? str_cat("image ", i) : im.name;
    MMEMBED_CHECK(im.height > 0 && im.width > 0, InvalidArgument, name, ": empty image (", im.width,
                  "x", im.height, ")");
    MMEMBED_CHECK(im.rgb.size() == static_cast<std::size_t>(im.height * im.width * 3),
                  InvalidArgument, name, ": ", im.rgb.size(), " bytes for a ", im.width, "x",
                  im.height, " RGB image (expected ", im.height * im.width * 3, ")");
  }
}

void check_pairs(std::span<const Image> images, std::span<const std::string> texts) {
  MMEMBED_CHECK(images.size() == texts.size(), InvalidArgument, "pairs need as many images (",
                images.size(), ") as texts (", texts.size(), ")");
  check_images(images);
  check_texts(texts);
}

// The checks of one call of `kind` (the embed_* calls pass only the inputs of their kind).
void check_inputs(InputKind kind, std::span<const Image> images,
                  std::span<const std::string> texts) {
  switch (kind) {
    case InputKind::kText:
      MMEMBED_CHECK(images.empty(), InvalidArgument, "text inputs take no images");
      check_texts(texts);
      break;
    case InputKind::kImage:
      MMEMBED_CHECK(texts.empty(), InvalidArgument, "image inputs take no texts");
      check_images(images);
      break;
    case InputKind::kPair:
      check_pairs(images, texts);
      break;
  }
}

// embed_texts / embed_images / embed_pairs: nothing asked needs no support; then the family's
// support, the inputs, and the adapter's call on slices of at most batch_size items.
Embeddings embed_in_batches(const embed::ModelAdapter& adapter, std::size_t batch_size,
                            InputKind kind, std::span<const Image> images,
                            std::span<const std::string> texts) {
  const ModelInfo& info = adapter.info();
  if (images.empty() && texts.empty()) return {0, info.dim, {}, {}};
  if (!info.supports(kind))
    embed::throw_unsupported(info, str_cat(input_kind_name(kind), " embeddings"));
  check_inputs(kind, images, texts);
  Embeddings out;
  out.dim = info.dim;
  const std::size_t n = kind == InputKind::kText ? texts.size() : images.size();
  for (std::size_t i = 0; i < n; i += batch_size) {
    const std::size_t m = std::min(batch_size, n - i);
    switch (kind) {
      case InputKind::kText:
        embed::append_rows(out, adapter.embed_texts(texts.subspan(i, m)));
        break;
      case InputKind::kImage:
        embed::append_rows(out, adapter.embed_images(images.subspan(i, m)));
        break;
      case InputKind::kPair:
        embed::append_rows(out, adapter.embed_pairs(images.subspan(i, m), texts.subspan(i, m)));
        break;
    }
  }
  return out;
}

}  // namespace

Embedder Embedder::load(const std::string& model, const EmbedderOptions& options) {
  MMEMBED_CHECK(options.batch_size >= 1 && options.batch_size <= kMaxBatchSize, InvalidArgument,
                "batch size ", options.batch_size, " is out of range (1 to ", kMaxBatchSize, ")");
  check_thread_count(options.threads, "threads");
  std::error_code ec;
  if (!fs::exists(model, ec)) throw IoError(str_cat("model '", model, "': no such directory"));
  MMEMBED_CHECK(fs::is_directory(model, ec), IoError, "model '", model,
                "' is not a directory (a model is a folder with config.json, the weights, the "
                "tokenizer and preprocessor files)");
  const std::string config_path = (fs::path(model) / "config.json").string();
  // Older sentence-transformers folders keep the model's config.json only in their Transformer
  // module's subfolder (0_Transformer/); modules.json says where, and the adapter reads it.
  const bool sentence = fs::exists(fs::path(model) / "modules.json", ec);
  const bool has_config = fs::exists(config_path, ec);
  MMEMBED_CHECK(has_config || sentence, IoError, "model '", model,
                "': no config.json (is this a Hugging Face model folder?)");
  kernels::set_num_threads(options.threads);
  embed::ModelFolder folder{model, has_config ? io::ConfigReader::from_file(config_path)
                                              : io::ConfigReader::parse("{}", config_path)};
  const Family family = detect_family(folder);
  MMEMBED_CHECK(options.pair_output == PairOutput::kDefault || family == Family::kBridgeTower,
                Unsupported, "model '", model, "': pair output '",
                pair_output_name(options.pair_output),
                "' is BridgeTower's; this model's pairs (if any) have their default output only");
  MMEMBED_CHECK(options.dtype == ModelDtype::kFp32 ||
                    (options.dtype == ModelDtype::kBf16 ? kernels::bf16_supported()
                                                        : kernels::int8_supported()),
                Unsupported, "dtype ", model_dtype_name(options.dtype),
                " needs the oneDNN GEMM backend; this build uses ", kernels::gemm_backend_name(),
                " (MMEMBED_BLAS)");
  Embedder e;
  e.options_ = options;
  e.adapter_ = make_adapter(family, folder, options);
  return e;
}

const ModelInfo& Embedder::info() const {
  return adapter_->info();
}
const EmbedderOptions& Embedder::options() const {
  return options_;
}

Embeddings Embedder::embed_texts(std::span<const std::string> texts) const {
  return embed_in_batches(*adapter_, options_.batch_size, InputKind::kText, {}, texts);
}

Embeddings Embedder::embed_images(std::span<const Image> images) const {
  return embed_in_batches(*adapter_, options_.batch_size, InputKind::kImage, images, {});
}

Embeddings Embedder::embed_pairs(std::span<const Image> images,
                                 std::span<const std::string> texts) const {
  return embed_in_batches(*adapter_, options_.batch_size, InputKind::kPair, images, texts);
}

PreparedBatch Embedder::prepare(InputKind kind, std::span<const Image> images,
                                std::span<const std::string> texts) const {
  check_inputs(kind, images, texts);
  const std::size_t n = kind == InputKind::kText ? texts.size() : images.size();
  PreparedBatch batch;
  batch.kind_ = kind;
  batch.rows_ = n;
  if (n == 0) return batch;
  if (!info().supports(kind))
    embed::throw_unsupported(info(), str_cat(input_kind_name(kind), " embeddings"));
  for (std::size_t i = 0; i < n; i += options_.batch_size) {
    const std::size_t m = std::min(options_.batch_size, n - i);
    batch.parts_.push_back(adapter_->prepare(kind, images.empty() ? images : images.subspan(i, m),
                                             texts.empty() ? texts : texts.subspan(i, m)));
  }
  return batch;
}

Embeddings Embedder::embed_prepared(const PreparedBatch& batch) const {
  Embeddings out;
  out.dim = info().dim;
  for (const auto& part : batch.parts_)
    embed::append_rows(out, adapter_->run(*part));
  return out;
}

std::vector<MatchScore> Embedder::match(std::span<const Image> images,
                                        std::span<const std::string> texts) const {
  if (!info().match) embed::throw_unsupported(info(), "image-text matching");
  check_pairs(images, texts);
  std::vector<MatchScore> out;
  out.reserve(images.size());
  for (std::size_t i = 0; i < images.size(); i += options_.batch_size) {
    const std::size_t n = std::min(options_.batch_size, images.size() - i);
    auto part = adapter_->match(images.subspan(i, n), texts.subspan(i, n));
    out.insert(out.end(), part.begin(), part.end());
  }
  return out;
}

std::vector<ImageMatchFeatures> Embedder::image_match_features(
    std::span<const Image> images) const {
  if (!info().match) embed::throw_unsupported(info(), "image-text matching");
  check_images(images);
  std::vector<ImageMatchFeatures> out;
  out.reserve(images.size());
  for (std::size_t i = 0; i < images.size(); i += options_.batch_size) {
    const std::size_t n = std::min(options_.batch_size, images.size() - i);
    auto part = adapter_->image_match_features(images.subspan(i, n));
    for (auto& f : part)
      out.push_back(std::move(f));
  }
  return out;
}

std::vector<MatchScore> Embedder::match_text(const std::string& text,
                                             std::span<const ImageMatchFeatures> images) const {
  if (!info().match) embed::throw_unsupported(info(), "image-text matching");
  check_texts({&text, 1});
  const std::vector<std::int64_t>& shape = info().match_features_shape;
  std::size_t numel = 1;
  for (std::int64_t d : shape)
    numel *= static_cast<std::size_t>(d);
  for (std::size_t i = 0; i < images.size(); ++i) {
    MMEMBED_CHECK(images[i].shape == shape && images[i].data.size() == numel, InvalidArgument,
                  "image features ", i, " are ", shape_str(images[i].shape), " with ",
                  images[i].data.size(), " values; this model's are ", shape_str(shape),
                  " (image_match_features() of the same model)");
  }
  if (images.empty()) return {};
  return adapter_->match_text(text, images);
}

}  // namespace mmembed
