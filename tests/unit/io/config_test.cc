#include "io/config.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace mmembed::io {
namespace {

const char* kClip = R"({
  "architectures": ["CLIPModel"],
  "model_type": "clip",
  "projection_dim": 512,
  "logit_scale_init_value": 2.6592,
  "initializer_factor": 1,
  "torch_dtype": null,
  "text_config": {"hidden_size": 512, "vocab_size": 49408, "hidden_act": "quick_gelu",
                  "layer_norm_eps": 1e-05, "bos_token_id": 0, "big": 10000000000},
  "vision_config": {"hidden_size": "768", "image_size": 224, "patch_size": 32.0,
                    "flags": [true, 1], "mean": [0.48145466, 0.4578275, 0.40821073]},
  "some_future_key": {"nested": [1, 2, 3]}
})";

TEST(Config, TypedAccess) {
  ConfigReader cfg = ConfigReader::parse(kClip, "config.json");
  EXPECT_EQ(cfg.required<std::int64_t>("projection_dim"), 512);
  EXPECT_EQ(cfg.required<int>("projection_dim"), 512);
  EXPECT_DOUBLE_EQ(cfg.required<double>("logit_scale_init_value"), 2.6592);
  EXPECT_DOUBLE_EQ(cfg.required<double>("initializer_factor"), 1.0);  // int accepted as double
  EXPECT_EQ(cfg.required<std::string>("model_type"), "clip");
  EXPECT_EQ(cfg.required<std::vector<std::string>>("architectures"),
            std::vector<std::string>{"CLIPModel"});
  EXPECT_EQ(cfg.optional<int>("missing", 7), 7);
  EXPECT_EQ(cfg.optional<std::string>("torch_dtype", "float32"), "float32");  // null = absent
  EXPECT_FALSE(cfg.has("torch_dtype"));
  EXPECT_TRUE(cfg.has("model_type"));

  ConfigReader text = cfg.object("text_config");
  EXPECT_EQ(text.path(), "text_config");
  EXPECT_EQ(text.required<int>("hidden_size"), 512);
  EXPECT_FLOAT_EQ(text.required<float>("layer_norm_eps"), 1e-5f);
  EXPECT_EQ(text.required<std::int64_t>("big"), 10000000000);
  auto mean = cfg.object("vision_config").required<std::vector<double>>("mean");
  ASSERT_EQ(mean.size(), 3u);
  EXPECT_DOUBLE_EQ(mean[0], 0.48145466);
  EXPECT_FALSE(cfg.optional_object("audio_config").has_value());
  EXPECT_EQ(cfg.keys().size(), 9u);
}

TEST(Config, ErrorsNameTheFileAndKey) {
  ConfigReader cfg = ConfigReader::parse(kClip, "config.json");
  EXPECT_ERROR(FormatError, cfg.required<int>("hidden_size"),
               "config.json: missing required key 'hidden_size'");
  EXPECT_ERROR(FormatError, cfg.object("text_config").required<int>("num_heads"),
               "config.json: missing required key 'text_config.num_heads'");
  EXPECT_ERROR(FormatError, cfg.object("vision_config").required<int>("hidden_size"),
               "config.json: key 'vision_config.hidden_size' has the wrong type",
               "expected integer", "got string \"768\"");
  EXPECT_ERROR(FormatError, cfg.object("vision_config").required<int>("patch_size"),
               "'vision_config.patch_size'", "got number 32.0");
  EXPECT_ERROR(FormatError, cfg.object("text_config").required<int>("big"),
               "expected integer in 32-bit range");
  EXPECT_ERROR(FormatError, cfg.object("vision_config").required<std::vector<int>>("flags"),
               "expected array of integer");
  EXPECT_ERROR(FormatError, cfg.object("model_type"), "'model_type'", "expected object");
  EXPECT_ERROR(FormatError, cfg.object("audio_config"), "missing required key 'audio_config'");
}

TEST(Config, ParseErrors) {
  EXPECT_ERROR(FormatError, ConfigReader::parse("[1]", "c.json"), "c.json", "JSON object");
  EXPECT_ERROR(FormatError, ConfigReader::parse("{\"a\":1,}", "c.json"), "c.json", "invalid JSON");
  EXPECT_ERROR(FormatError, ConfigReader::parse("{\"a\":1,\"a\":2}", "c.json"),
               "duplicate key 'a'");
  EXPECT_ERROR(IoError, ConfigReader::from_file(testing::data_path("nope/config.json")),
               "nope/config.json");
  ConfigReader f = ConfigReader::from_file(testing::data_path("no_weights/config.json"));
  EXPECT_EQ(f.required<std::string>("model_type"), "clip");
}

}  // namespace
}  // namespace mmembed::io
