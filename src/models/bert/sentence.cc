// sentence-transformers module list, Pooling and Normalize (sentence-transformers 2.x/3.x
// formats, read from their saved files).
#include "models/bert/sentence.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/check.h"
#include "core/file.h"
#include "io/config.h"
#include "models/stages.h"
#include "ops/ops.h"

namespace mmembed::models::bert {

namespace fs = std::filesystem;

// ---- Pooling ----

PoolingConfig PoolingConfig::parse(const std::string& json_text, const std::string& source) {
  const io::ConfigReader cfg = io::ConfigReader::parse(json_text, source);
  PoolingConfig p;
  p.word_embedding_dimension = cfg.optional<std::int64_t>("word_embedding_dimension", 0);
  if (auto mode = cfg.get<std::string>("pooling_mode")) {
    if (*mode == "cls") p.cls = true;
    else if (*mode == "max") p.max = true;
    else if (*mode == "mean") p.mean = true;
    else if (*mode == "mean_sqrt_len_tokens") p.mean_sqrt_len = true;
    else if (*mode == "lasttoken") p.last_token = true;
    else
      throw Unsupported(str_cat(source, ": pooling_mode '", *mode,
                                "' is not supported (cls, max, mean, mean_sqrt_len_tokens, "
                                "lasttoken)"));
  }
  p.cls = cfg.optional<bool>("pooling_mode_cls_token", p.cls);
  p.max = cfg.optional<bool>("pooling_mode_max_tokens", p.max);
  p.mean = cfg.optional<bool>("pooling_mode_mean_tokens", p.mean);
  p.mean_sqrt_len = cfg.optional<bool>("pooling_mode_mean_sqrt_len_tokens", p.mean_sqrt_len);
  p.last_token = cfg.optional<bool>("pooling_mode_lasttoken", p.last_token);
  MMEMBED_CHECK(!cfg.optional<bool>("pooling_mode_weightedmean_tokens", false), Unsupported,
                source, ": pooling_mode_weightedmean_tokens is not supported");
  MMEMBED_CHECK(p.modes() > 0, InvalidArgument, source,
                ": no pooling mode is on (pooling_mode_cls_token, _max_tokens, _mean_tokens, "
                "_mean_sqrt_len_tokens, _lasttoken are all false)");
  return p;
}

int PoolingConfig::modes() const {
  return int(cls) + int(max) + int(mean) + int(mean_sqrt_len) + int(last_token);
}

std::string PoolingConfig::describe() const {
  std::string s;
  auto add = [&](bool on, const char* name) {
    if (!on) return;
    if (!s.empty()) s += '+';
    s += name;
  };
  add(cls, "cls");
  add(max, "max");
  add(mean, "mean");
  add(mean_sqrt_len, "mean_sqrt_len_tokens");
  add(last_token, "lasttoken");
  return s;
}

namespace {

float mask_at(const std::optional<Tensor>& mask, std::int64_t i) {
  return mask ? static_cast<float>(mask->value_at(i) != 0.0) : 1.0f;
}

}  // namespace

Tensor pool(const PoolingConfig& config, const Tensor& hidden,
            const std::optional<Tensor>& mask) {
  MMEMBED_CHECK(hidden.dtype() == DType::F32 && hidden.rank() == 3, InvalidArgument,
                "pooling: token embeddings must be f32 [batch, tokens, hidden], got ",
                hidden.describe());
  const std::int64_t B = hidden.dim(0), L = hidden.dim(1), H = hidden.dim(2);
  if (mask) {
    MMEMBED_CHECK(mask->shape() == Shape({B, L}), InvalidArgument, "pooling: attention_mask ",
                  shape_str(mask->shape()), " does not match the tokens [", B, ",", L, "]");
  }
  const std::int64_t W = config.modes() * H;
  Tensor out = Tensor::empty(DType::F32, {B, W});
  std::vector<float> sum(static_cast<std::size_t>(H));
  for (std::int64_t b = 0; b < B; ++b) {
    const float* h = hidden.data<float>() + b * L * H;
    float* dst = out.data<float>() + b * W;
    if (config.cls) {
      std::copy(h, h + H, dst);
      dst += H;
    }
    if (config.max) {
      // Masked tokens are replaced by -1e9 before the max, as the library does.
      for (std::int64_t j = 0; j < H; ++j) dst[j] = -1e9f;
      for (std::int64_t t = 0; t < L; ++t) {
        const bool real = mask_at(mask, b * L + t) != 0.0f;
        for (std::int64_t j = 0; j < H; ++j) {
          dst[j] = std::max(dst[j], real ? h[t * H + j] : -1e9f);
        }
      }
      dst += H;
    }
    if (config.mean || config.mean_sqrt_len) {
      // sum over tokens of h * m (in token order), and the clamped mask count.
      std::fill(sum.begin(), sum.end(), 0.0f);
      float count = 0.0f;
      for (std::int64_t t = 0; t < L; ++t) {
        const float m = mask_at(mask, b * L + t);
        count += m;
        for (std::int64_t j = 0; j < H; ++j) sum[j] += h[t * H + j] * m;
      }
      count = std::max(count, 1e-9f);
      if (config.mean) {
        for (std::int64_t j = 0; j < H; ++j) dst[j] = sum[j] / count;
        dst += H;
      }
      if (config.mean_sqrt_len) {
        const float root = std::sqrt(count);
        for (std::int64_t j = 0; j < H; ++j) dst[j] = sum[j] / root;
        dst += H;
      }
    }
    if (config.last_token) {
      std::int64_t last = 0;
      for (std::int64_t t = 0; t < L; ++t) {
        if (mask_at(mask, b * L + t) != 0.0f) last = t;
      }
      std::copy(h + last * H, h + last * H + H, dst);
      dst += H;
    }
  }
  return out;
}

// ---- module list ----

namespace {

std::string read_file(const fs::path& path) {
  return read_input_file(path.string(), kMaxConfigFileBytes);
}

std::string module_kind(const std::string& type) {
  const std::size_t dot = type.rfind('.');
  return dot == std::string::npos ? type : type.substr(dot + 1);
}

}  // namespace

SentenceConfig SentenceConfig::from_dir(const std::string& dir) {
  const fs::path root(dir);
  const fs::path modules_path = root / "modules.json";
  MMEMBED_CHECK(fs::exists(modules_path), IoError, modules_path.string(),
                ": not found (a sentence-transformers folder has a modules.json)");
  const std::string source = modules_path.string();
  nlohmann::json modules;
  try {
    modules = nlohmann::json::parse(read_file(modules_path));
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(str_cat(source, ": not valid JSON (", e.what(), ")"));
  }
  MMEMBED_CHECK(modules.is_array() && !modules.empty(), FormatError, source,
                ": expected a non-empty array of modules");

  SentenceConfig c;
  bool transformer = false, pooling = false;
  for (std::size_t i = 0; i < modules.size(); ++i) {
    const nlohmann::json& m = modules[i];
    MMEMBED_CHECK(m.is_object() && m.contains("type") && m["type"].is_string(), FormatError,
                  source, ": module ", i, " has no string 'type'");
    const std::string type = m["type"].get<std::string>();
    const std::string path = m.contains("path") && m["path"].is_string()
                                 ? m["path"].get<std::string>()
                                 : std::string();
    MMEMBED_CHECK(path.find("..") == std::string::npos, FormatError, source, ": module ", i,
                  " path '", path, "' leaves the model folder");
    const std::string kind = module_kind(type);
    if (kind == "Transformer" && !transformer && !pooling) {
      transformer = true;
      const fs::path tdir = path.empty() ? root : root / path;
      c.transformer_dir = tdir.string();
      const fs::path sb = tdir / "sentence_bert_config.json";
      if (fs::exists(sb)) {
        const io::ConfigReader cfg = io::ConfigReader::parse(read_file(sb), sb.string());
        c.max_seq_length = cfg.optional<std::int64_t>("max_seq_length", 0);
        c.do_lower_case = cfg.optional<bool>("do_lower_case", false);
        MMEMBED_CHECK(c.max_seq_length >= 0, InvalidArgument, sb.string(),
                      ": max_seq_length must be >= 0");
      }
    } else if (kind == "Pooling" && transformer && !pooling) {
      pooling = true;
      const fs::path pc = root / path / "config.json";
      c.pooling = PoolingConfig::parse(read_file(pc), pc.string());
    } else if (kind == "Normalize" && pooling && !c.normalize && i + 1 == modules.size()) {
      c.normalize = true;
    } else {
      throw Unsupported(str_cat(source, ": module ", i, " (", type,
                                ") is not supported here; supported module lists are "
                                "Transformer -> Pooling -> [Normalize]"));
    }
  }
  MMEMBED_CHECK(transformer && pooling, Unsupported, source,
                ": the module list has no ", transformer ? "Pooling" : "Transformer",
                " module (supported: Transformer -> Pooling -> [Normalize])");
  return c;
}

// ---- the model ----

SentenceModel SentenceModel::load(const std::string& dir) {
  SentenceConfig config = SentenceConfig::from_dir(dir);
  BertModel encoder = BertModel::load(config.transformer_dir);
  return SentenceModel(std::move(config), std::move(encoder));
}

SentenceModel::SentenceModel(SentenceConfig config, BertModel encoder)
    : config_(std::move(config)), encoder_(std::move(encoder)) {
  const std::int64_t H = encoder_.config().hidden_size;
  const std::int64_t d = config_.pooling.word_embedding_dimension;
  MMEMBED_CHECK(d == 0 || d == H, InvalidArgument, config_.transformer_dir,
                ": the Pooling module's word_embedding_dimension ", d,
                " differs from the encoder's hidden_size ", H);
}

std::int64_t SentenceModel::dim() const {
  return config_.pooling.modes() * encoder_.config().hidden_size;
}

Tensor SentenceModel::encode(const Tensor& input_ids, const std::optional<Tensor>& attention_mask,
                             const std::optional<Tensor>& token_type_ids,
                             const RunOptions& options) const {
  RunOptions inner = options;
  inner.pooler = false;  // sentence-transformers never uses BertPooler
  const BertOutput out = encoder_.forward(input_ids, attention_mask, token_type_ids, inner);
  const StageReporter stage(options.on_stage);
  Tensor pooled = pool(config_.pooling, out.last_hidden_state, attention_mask);
  stage("pooled", pooled);
  if (config_.normalize) {
    // torch.nn.functional.normalize(p=2, dim=1): x / max(||x||, 1e-12).
    Tensor normed = ops::l2_normalize(pooled);
    stage("sentence_embedding", normed);
    return normed;
  }
  stage("sentence_embedding", pooled);
  return pooled;
}

}  // namespace mmembed::models::bert
