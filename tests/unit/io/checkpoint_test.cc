#include "io/checkpoint.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace mmembed::io {
namespace {

using testing::data_path;

TEST(Checkpoint, ShardedSafetensors) {
  Checkpoint ckpt = open_checkpoint(data_path("sharded/model.safetensors.index.json"));
  EXPECT_EQ(ckpt.format(), "safetensors-sharded");
  EXPECT_EQ(ckpt.files().size(), 2u);
  testing::expect_matches_torch(ckpt, "sharded/model.safetensors.index.json");
  // A folder resolves to its index when there is no single file.
  Checkpoint dir = open_checkpoint(data_path("sharded"));
  EXPECT_EQ(dir.format(), "safetensors-sharded");
  EXPECT_EQ(dir.tensors().size(), 3u);
}

TEST(Checkpoint, ShardedTorch) {
  Checkpoint ckpt = open_checkpoint(data_path("torch_sharded"));
  EXPECT_EQ(ckpt.format(), "pytorch-zip-sharded");
  testing::expect_matches_torch(ckpt, "torch_sharded/pytorch_model.bin.index.json");
}

TEST(Checkpoint, FolderPrefersSafetensors) {
  Checkpoint ckpt = open_checkpoint(data_path("model_dir"));
  EXPECT_EQ(ckpt.format(), "safetensors");
  EXPECT_NE(ckpt.path().find("model.safetensors"), std::string::npos);
}

TEST(Checkpoint, MissingPathsAndEmptyFolders) {
  EXPECT_ERROR(IoError, open_checkpoint(data_path("nope")), "nope", "no such file");
  EXPECT_ERROR(IoError, open_checkpoint(data_path("no_weights")), "no_weights",
               "looked for model.safetensors, model.safetensors.index.json, pytorch_model.bin, "
               "pytorch_model.bin.index.json");
}

TEST(Checkpoint, UnknownTensorName) {
  Checkpoint ckpt = open_checkpoint(data_path("single.safetensors"));
  EXPECT_EQ(ckpt.find("nope"), nullptr);
  EXPECT_ERROR(InvalidArgument, ckpt.get("nope"), "single.safetensors", "no tensor named 'nope'");
}

TEST(Checkpoint, BadIndexes) {
  EXPECT_ERROR(FormatError, open_checkpoint(data_path("bad_index/escape.index.json")),
               "escape.index.json", "'../sharded/model-00001-of-00002.safetensors'",
               "relative path");
  EXPECT_ERROR(IoError, open_checkpoint(data_path("bad_index/missing_shard.index.json")),
               "missing_shard.index.json", "shard 'model-00002-of-00002.safetensors' not found");
  EXPECT_ERROR(FormatError, open_checkpoint(data_path("bad_index/wrong_shard.index.json")),
               "wrong_shard.index.json", "tensor 'decoder.c'",
               "mapped to shard 'model-00001-of-00002.safetensors', which does not contain it");
  EXPECT_ERROR(FormatError, open_checkpoint(data_path("bad_index/no_weight_map.index.json")),
               "missing \"weight_map\"");
  EXPECT_ERROR(FormatError, parse_shard_index(R"({"weight_map": {"a": 1}})", "i.json"),
               "i.json", "weight_map entry 'a'", "got integer");
  EXPECT_ERROR(FormatError, parse_shard_index(R"({"weight_map": {"a": "/etc/passwd"}})", "i.json"),
               "'/etc/passwd'");
  EXPECT_ERROR(FormatError, parse_shard_index(R"({"weight_map": {"a": "x", "a": "y"}})", "i.json"),
               "duplicate key 'a'");
}

}  // namespace
}  // namespace mmembed::io
