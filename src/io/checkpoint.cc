#include "io/checkpoint.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include "core/check.h"
#include "core/file.h"
#include "io/json_internal.h"
#include "io/mapped_file.h"
#include "io/safetensors.h"
#include "io/torch_zip.h"

namespace mmembed::io {

namespace fs = std::filesystem;

std::vector<std::string> Checkpoint::files() const {
  std::vector<std::string> out;
  for (const auto& s : sources_)
    out.push_back(s->path());
  return out;
}

const TensorInfo* Checkpoint::find(std::string_view name) const {
  auto it = by_name_.find(std::string(name));
  return it == by_name_.end() ? nullptr : &infos_[it->second];
}

Tensor Checkpoint::get(std::string_view name) const {
  auto it = by_name_.find(std::string(name));
  if (it == by_name_.end()) {
    throw InvalidArgument(str_cat(path_, ": no tensor named '", name, "'"));
  }
  const Slot& slot = slots_[it->second];
  return sources_[slot.source]->load(slot.index);
}

void Checkpoint::release(std::string_view name) const {
  auto it = by_name_.find(std::string(name));
  if (it == by_name_.end()) return;
  const Slot& slot = slots_[it->second];
  sources_[slot.source]->release(slot.index);
}

Tensor Checkpoint::get_f32(std::string_view name) const {
  return get(name).to_f32();
}

Checkpoint Checkpoint::from_sources(std::string path, std::string format,
                                    std::vector<std::shared_ptr<const TensorSource>> sources) {
  Checkpoint c;
  c.path_ = std::move(path);
  c.format_ = std::move(format);
  c.sources_ = std::move(sources);
  for (std::size_t s = 0; s < c.sources_.size(); ++s) {
    const auto& infos = c.sources_[s]->tensors();
    for (std::size_t i = 0; i < infos.size(); ++i) {
      auto [it, inserted] = c.by_name_.emplace(infos[i].name, c.infos_.size());
      if (!inserted) {
        throw FormatError(str_cat(c.path_, ": tensor '", infos[i].name, "' appears in both ",
                                  c.infos_[it->second].file, " and ", infos[i].file));
      }
      c.infos_.push_back(infos[i]);
      c.slots_.push_back({s, i});
      c.parameter_count_ += infos[i].numel;
    }
  }
  if (!c.sources_.empty()) {
    if (auto* st = dynamic_cast<const SafetensorsFile*>(c.sources_.front().get())) {
      c.metadata_ = st->metadata();
    }
  }
  return c;
}

namespace {

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Opens one data file, choosing the reader from the name, else from the first bytes.
std::shared_ptr<const TensorSource> open_data_file(const std::string& path) {
  if (ends_with(path, ".safetensors")) return SafetensorsFile::open(path);
  if (ends_with(path, ".bin") || ends_with(path, ".pt") || ends_with(path, ".pth")) {
    return TorchZipFile::open(path);
  }
  auto file = MappedFile::open(path);
  ByteSpan b = file->bytes();
  if (b.size() >= 4 && b[0] == 'P' && b[1] == 'K' && b[2] == 3 && b[3] == 4) {
    return TorchZipFile::open(path);
  }
  if (b.size() >= 9 && b[8] == '{') return SafetensorsFile::open(path);
  check_torch_container(b, path);  // throws Unsupported for legacy torch formats
  throw FormatError(str_cat(path,
                            ": unrecognised checkpoint format (expected safetensors or a "
                            "torch.save zip)"));
}

bool bad_shard_name(const std::string& name) {
  if (name.empty() || name.front() == '/' || name.find('\\') != std::string::npos ||
      name.find('\0') != std::string::npos) {
    return true;
  }
  for (const auto& part : fs::path(name)) {
    if (part == "..") return true;
  }
  return false;
}

Checkpoint open_index(const std::string& path) {
  ShardIndex index = parse_shard_index(read_input_file(path, kMaxConfigFileBytes), path);
  const fs::path dir = fs::path(path).parent_path();
  std::vector<std::shared_ptr<const TensorSource>> shards;
  for (const std::string& shard : index.shards) {
    fs::path p = dir / shard;
    std::error_code ec;
    if (!fs::exists(p, ec)) {  // a FIFO or a folder is refused by open_data_file, by name
      throw IoError(str_cat(path, ": shard '", shard, "' not found (looked for ", p.string(), ")"));
    }
    shards.push_back(open_data_file(p.string()));
  }
  // Keep only the tensors the index lists, and require each in the shard it names.
  std::map<std::string, std::size_t> shard_pos;
  for (std::size_t i = 0; i < index.shards.size(); ++i)
    shard_pos[index.shards[i]] = i;
  std::vector<std::set<std::string>> present(shards.size());
  for (std::size_t s = 0; s < shards.size(); ++s) {
    for (const TensorInfo& t : shards[s]->tensors())
      present[s].insert(t.name);
  }
  std::vector<std::set<std::string>> listed(shards.size());
  for (const auto& [tensor, shard] : index.weight_map) {
    std::size_t s = shard_pos.at(shard);
    if (!present[s].count(tensor)) {
      throw FormatError(str_cat(path, ": tensor '", tensor, "' is mapped to shard '", shard,
                                "', which does not contain it"));
    }
    listed[s].insert(tensor);
  }
  // A tensor present in a shard other than the one the index names is ambiguous.
  for (std::size_t s = 0; s < shards.size(); ++s) {
    for (const TensorInfo& t : shards[s]->tensors()) {
      if (listed[s].count(t.name)) continue;
      for (std::size_t o = 0; o < shards.size(); ++o) {
        if (o != s && listed[o].count(t.name)) {
          throw FormatError(str_cat(path, ": tensor '", t.name, "' is in shards '", index.shards[o],
                                    "' and '", index.shards[s], "' (expected exactly one)"));
        }
      }
    }
  }
  // Wrap each shard so that unlisted tensors are left out.
  class Filtered final : public TensorSource {
   public:
    Filtered(std::shared_ptr<const TensorSource> inner, const std::set<std::string>& keep)
        : inner_(std::move(inner)) {
      const auto& all = inner_->tensors();
      for (std::size_t i = 0; i < all.size(); ++i) {
        if (keep.count(all[i].name)) {
          infos_.push_back(all[i]);
          map_.push_back(i);
        }
      }
    }
    const std::string& path() const noexcept override { return inner_->path(); }
    std::string_view format() const noexcept override { return inner_->format(); }
    const std::vector<TensorInfo>& tensors() const noexcept override { return infos_; }
    Tensor load(std::size_t i) const override { return inner_->load(map_.at(i)); }

   private:
    std::shared_ptr<const TensorSource> inner_;
    std::vector<TensorInfo> infos_;
    std::vector<std::size_t> map_;
  };
  std::vector<std::shared_ptr<const TensorSource>> sources;
  std::string format = "safetensors-sharded";
  for (std::size_t s = 0; s < shards.size(); ++s) {
    if (shards[s]->format() != "safetensors") format = "pytorch-zip-sharded";
    if (listed[s].size() == shards[s]->tensors().size()) {
      sources.push_back(shards[s]);
    } else {
      sources.push_back(std::make_shared<Filtered>(shards[s], listed[s]));
    }
  }
  Checkpoint c = Checkpoint::from_sources(path, format, std::move(sources));
  return c;
}

}  // namespace

ShardIndex parse_shard_index(std::string_view text, const std::string& source) {
  nlohmann::json root = parse_json_strict(text, source, 16);
  if (!root.is_object()) {
    throw FormatError(
        str_cat(source, ": shard index must be a JSON object (got ", json_type_name(root), ")"));
  }
  if (root.contains("metadata") && !root["metadata"].is_object()) {
    throw FormatError(str_cat(source, ": \"metadata\" must be an object (got ",
                              json_type_name(root["metadata"]), ")"));
  }
  if (!root.contains("weight_map")) {
    throw FormatError(str_cat(source, ": missing \"weight_map\" (expected a shard index)"));
  }
  const auto& wm = root["weight_map"];
  if (!wm.is_object()) {
    throw FormatError(
        str_cat(source, ": \"weight_map\" must be an object (got ", json_type_name(wm), ")"));
  }
  ShardIndex index;
  std::set<std::string> shards;
  for (auto it = wm.begin(); it != wm.end(); ++it) {
    if (!it->is_string()) {
      throw FormatError(str_cat(source, ": weight_map entry '", printable(it.key()),
                                "' must be a file name (got ", json_type_name(*it), ")"));
    }
    const std::string& shard = it->get_ref<const std::string&>();
    if (bad_shard_name(shard)) {
      throw FormatError(str_cat(source, ": shard name '", printable(shard), "' for tensor '",
                                printable(it.key()),
                                "' must be a relative path inside the index's folder"));
    }
    index.weight_map.emplace_back(it.key(), shard);
    shards.insert(shard);
  }
  index.shards.assign(shards.begin(), shards.end());
  return index;
}

Checkpoint open_checkpoint(const std::string& path) {
  std::error_code ec;
  fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) {
    throw IoError(str_cat(path, ": no such file or directory"));
  }
  if (fs::is_directory(st)) {
    static constexpr const char* kCandidates[] = {
        "model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
        "pytorch_model.bin.index.json"};
    for (const char* name : kCandidates) {
      fs::path p = fs::path(path) / name;
      if (fs::exists(p, ec)) return open_checkpoint(p.string());
    }
    throw IoError(str_cat(path,
                          ": no checkpoint in this folder (looked for model.safetensors, "
                          "model.safetensors.index.json, pytorch_model.bin, "
                          "pytorch_model.bin.index.json)"));
  }
  if (ends_with(path, ".json")) return open_index(path);
  auto source = open_data_file(path);
  std::string format(source->format());
  return Checkpoint::from_sources(path, format, {source});
}

}  // namespace mmembed::io
