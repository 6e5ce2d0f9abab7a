// hub::model_card_tags: the tags of a model card's YAML front matter, in the forms the Hub writes
// (block lists) and people write (flow lists, one value), and nothing from cards without a closed
// front matter, from special files, or from outside the first 64 KiB.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <fstream>
#include <string>
#include <vector>

#include "hub_test_util.h"
#include "mmembed/hub.h"

namespace mmembed::hub {
namespace {

using hubtest::TempDir;
using Tags = std::vector<std::string>;

Tags tags_of(const TempDir& dir, const std::string& card) {
  std::ofstream(dir.path() / "README.md", std::ios::binary) << card;
  return model_card_tags(dir.path());
}

TEST(ModelCard, TagsOfTheFrontMatter) {
  TempDir dir;
  EXPECT_EQ(tags_of(dir, "---\nlicense: mit\ntags:\n- mmembed-toy\n- 'clip'\n  - \"x y\"\n"
                         "library_name: transformers\n---\n# card\n- not a tag\n"),
            (Tags{"mmembed-toy", "clip", "x y"}));
  EXPECT_EQ(tags_of(dir, "---\r\ntags: [a, \"b\", c ]\r\n---\r\n"), (Tags{"a", "b", "c"}));
  EXPECT_EQ(tags_of(dir, "---\ntags: mmembed-random-weights\n---\n"),
            (Tags{"mmembed-random-weights"}));
  // A nested "tags:" key (indented) belongs to another mapping.
  EXPECT_EQ(tags_of(dir, "---\nmodel-index:\n  tags:\n  - nope\n---\n"), Tags{});
}

TEST(ModelCard, NoTagsWithoutAClosedFrontMatter) {
  TempDir dir;
  EXPECT_EQ(model_card_tags(dir.path()), Tags{});  // no card
  EXPECT_EQ(tags_of(dir, ""), Tags{});
  EXPECT_EQ(tags_of(dir, "# toy\ntags:\n- mmembed-toy\n"), Tags{});     // no front matter
  EXPECT_EQ(tags_of(dir, "---\ntags:\n- mmembed-toy\n# never closed\n"), Tags{});
  // Closed only after the first 64 KiB: not read.
  EXPECT_EQ(tags_of(dir, "---\ntags:\n- a\n" + std::string(70000, '#') + "\n---\n"), Tags{});
}

TEST(ModelCard, SpecialFilesGiveNoTags) {
  TempDir dir;
  std::filesystem::create_directory(dir.path() / "README.md");
  EXPECT_EQ(model_card_tags(dir.path()), Tags{});
  TempDir fifo_dir;
  ASSERT_EQ(mkfifo((fifo_dir.path() / "README.md").c_str(), 0600), 0);
  EXPECT_EQ(model_card_tags(fifo_dir.path()), Tags{});  // refused, not waited on
}

TEST(ModelCard, TheFixturesSayWhatTheyAre) {
  const std::string models = std::string(MMEMBED_TEST_DATA_DIR) + "/models/";
  EXPECT_EQ(model_card_tags(models + "toy-clip"), Tags{"mmembed-toy"});
  EXPECT_EQ(model_card_tags(models + "clip-tiny-gelu"), Tags{"mmembed-random-weights"});
  EXPECT_EQ(model_card_tags(models + "bridgetower-large-tiny"), Tags{"mmembed-random-weights"});
}

}  // namespace
}  // namespace mmembed::hub
