#include "io/weight_map.h"

#include <gtest/gtest.h>

#include "core/check.h"
#include "test_util.h"

namespace mmembed::io {
namespace {

using testing::data_path;

TEST(NameMap, RulesInOrder) {
  NameMap m;
  m.rename("model.special", "special").rename_prefix("model.", "").ignore("model.skip.");
  EXPECT_EQ(m.to_internal("model.special"), "special");
  EXPECT_EQ(m.to_internal("model.a.w"), "a.w");
  EXPECT_EQ(m.to_internal("other"), "other");
  NameMap ig;
  ig.ignore("x.position_ids").ignore("buffers.");
  EXPECT_EQ(ig.to_internal("x.position_ids"), std::nullopt);
  EXPECT_EQ(ig.to_internal("buffers.anything"), std::nullopt);
}

TEST(BindWeights, BindsRenamesAndReportsUnused) {
  Checkpoint ckpt = open_checkpoint(data_path("torch_state.bin"));
  NameMap names;
  names.rename_prefix("0.", "linear.").rename_prefix("1.", "norm.").ignore("position_ids");
  BoundWeights w = bind_weights(ckpt,
                                {{"linear.weight", {3, 4}},
                                 {"linear.bias", {-1}},
                                 {"norm.weight", {3}},
                                 {"norm.bias", {3}},
                                 {"extra.optional", {1}, false}},
                                names);
  EXPECT_EQ(w.checkpoint_name("linear.weight"), "0.weight");
  EXPECT_EQ(w.get_f32("linear.weight").shape(), (Shape{3, 4}));
  EXPECT_FALSE(w.has("extra.optional"));
  EXPECT_EQ(w.missing_optional(), std::vector<std::string>{"extra.optional"});
  // position_ids is ignored; the views and extra tensors are unused (a warning, not an error).
  EXPECT_EQ(w.unused(), (std::vector<std::string>{"0.weight_t", "0.weight_row1", "half",
                                                  "bf16", "scalar", "empty", "mask"}));
  EXPECT_ERROR(InvalidArgument, w.get("extra.optional"), "'extra.optional' was not bound");
}

TEST(BindWeights, ReportsEveryProblemAtOnce) {
  Checkpoint ckpt = open_checkpoint(data_path("torch_state.bin"));
  std::string msg = testing::error_of<FormatError>([&] {
    bind_weights(ckpt, {{"0.weight", {3, 5}},
                        {"0.bias", {3}},
                        {"missing.a", {1}},
                        {"missing.b", {2}},
                        {"half", {2, 2, 1}}});
  });
  EXPECT_TRUE(testing::has_all(
      msg, {"torch_state.bin: checkpoint does not match the model (4 problems):",
            "\n  0.weight: got [3,4] expected [3,5]", "\n  missing tensor 'missing.a'",
            "\n  missing tensor 'missing.b'", "\n  half: got [2,2] expected [2,2,1]"}));
  // Only shape problems: ShapeError, with checkpoint and internal names when they differ.
  NameMap names;
  names.rename_prefix("0.", "linear.");
  EXPECT_ERROR(ShapeError, bind_weights(ckpt, {{"linear.weight", {4, 3}}}, names),
               "0.weight (linear.weight): got [3,4] expected [4,3]");
}

TEST(BindWeights, ListsTheFirstProblemsAndCountsTheRest) {
  // A config that expects far more layers than the checkpoint has: the message stays short.
  Checkpoint ckpt = open_checkpoint(data_path("torch_state.bin"));
  std::vector<ExpectedTensor> expected;
  for (int i = 0; i < 1000; ++i) expected.push_back({str_cat("layer.", i, ".weight"), {1}});
  const std::string msg = testing::error_of<FormatError>([&] { bind_weights(ckpt, expected); });
  EXPECT_TRUE(testing::has_all(msg, {"(1000 problems):", "missing tensor 'layer.0.weight'",
                                     "missing tensor 'layer.19.weight'\n  and 980 more"}));
  EXPECT_EQ(msg.find("layer.20.weight"), std::string::npos);
  EXPECT_LT(msg.size(), 2000u);
}

TEST(CheckLayerCount, RefusesMoreLayersThanTheCheckpointCanHold) {
  Checkpoint ckpt = open_checkpoint(data_path("torch_state.bin"));  // 12 tensors
  ASSERT_EQ(ckpt.tensors().size(), 12u);
  EXPECT_NO_THROW(check_layer_count(ckpt, "num_hidden_layers", 0, 16));
  EXPECT_NO_THROW(check_layer_count(ckpt, "num_hidden_layers", 3, 4));
  EXPECT_ERROR(FormatError, check_layer_count(ckpt, "num_hidden_layers", 4, 4),
               "config.json: num_hidden_layers is 4, but ", "torch_state.bin has only 12 tensors",
               "too few for that many layers (each needs 4)");
  EXPECT_ERROR(FormatError,
               check_layer_count(ckpt, "text_config.num_hidden_layers", INT64_MAX, 16),
               "text_config.num_hidden_layers is 9223372036854775807");
  EXPECT_ERROR(FormatError, check_layer_count(ckpt, "num_hidden_layers", -1, 16),
               "num_hidden_layers is -1 (expected a layer count >= 0)");
}

TEST(BindWeights, AmbiguousRenames) {
  Checkpoint ckpt = open_checkpoint(data_path("torch_state.bin"));
  NameMap names;
  names.rename("0.weight_t", "0.weight");
  EXPECT_ERROR(FormatError, bind_weights(ckpt, {{"0.weight", {3, 4}}}, names),
               "'0.weight' and '0.weight_t' both map to '0.weight'");
}

}  // namespace
}  // namespace mmembed::io
