#include "test_util.h"

#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>

namespace mmembed::text::testing {

namespace {
const golden::Manifest& manifest() { return golden::Manifest::get(); }

std::string file_text(const std::string& relative, bool gzip) {
  auto bytes = manifest().file_bytes(relative, gzip);
  return std::string(bytes->begin(), bytes->end());
}
}  // namespace

const std::vector<std::string>& corpus() {
  static const std::vector<std::string> texts = [] {
    std::vector<std::string> out;
    std::istringstream in(file_text("tokenizers/corpus.jsonl.gz", true));
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      auto j = nlohmann::json::parse(line);
      const auto i = j.at("i").get<std::size_t>();
      if (out.size() <= i) out.resize(i + 1);
      out[i] = j.at("text").get<std::string>();
    }
    return out;
  }();
  return texts;
}

TokenizerFiles reference_files(const std::string& name) {
  TokenizerFiles f;
  const std::string dir = "tokenizers/" + name;
  f.origin = manifest().data_dir() + "/" + dir;
  f.tokenizer_json = file_text(dir + "/tokenizer.json.gz", true);
  f.tokenizer_config_json = file_text(dir + "/tokenizer_config.json", false);
  f.special_tokens_map_json = file_text(dir + "/special_tokens_map.json", false);
  return f;
}

const Tokenizer& reference_tokenizer(const std::string& name) {
  static std::mutex mutex;
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  std::lock_guard<std::mutex> lock(mutex);
  auto& slot = cache[name];
  if (!slot) slot = load_tokenizer(reference_files(name));
  return *slot;
}

std::vector<std::vector<std::int64_t>> golden_sequences(const std::string& name,
                                                        const std::string& variant) {
  const std::string prefix = "tok/" + name + "/" + variant + "/";
  Tensor ids = manifest().load(manifest().entry(prefix + "ids"));
  Tensor offsets = manifest().load(manifest().entry(prefix + "offsets"));
  const auto* id = ids.data<std::int64_t>();
  const auto* off = offsets.data<std::int64_t>();
  std::vector<std::vector<std::int64_t>> out;
  for (std::int64_t n = 0; n + 1 < offsets.numel(); ++n)
    out.emplace_back(id + off[n], id + off[n + 1]);
  return out;
}

std::string escaped(const std::string& s, std::size_t limit) {
  std::ostringstream o;
  for (std::size_t i = 0; i < s.size() && i < limit; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '\n') o << "\\n";
    else if (c == '\t') o << "\\t";
    else if (c < 0x20 || c == 0x7F) o << "\\x" << std::hex << int(c) << std::dec;
    else o << s[i];
  }
  if (s.size() > limit) o << "...(" << s.size() << " bytes)";
  return o.str();
}

std::string ids_str(const std::vector<std::int64_t>& ids, std::size_t limit) {
  std::ostringstream o;
  o << "[";
  for (std::size_t i = 0; i < ids.size() && i < limit; ++i) o << (i ? " " : "") << ids[i];
  if (ids.size() > limit) o << " ...(" << ids.size() << ")";
  o << "]";
  return o.str();
}

}  // namespace mmembed::text::testing
