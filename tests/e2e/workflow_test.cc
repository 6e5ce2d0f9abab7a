// The lesson's workflow end to end, as a user runs it, against local imitations of the image
// host and of the Hugging Face Hub (tests/support/fake_hub.py):
//   mmembed fetch (good images, a 404, HTML instead of an image, a truncated JPEG, an oversized
//   file, a server too slow for the timeout) -> mmembed embed --model org/name (downloaded into
//   an HF cache through the imitation Hub; killed after its first chunk, then resumed) ->
//   mmembed reduce --method umap -> mmembed plot.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <nlohmann/json.hpp>

#include <map>
#include <sstream>

#include "hub_test_util.h"
#include "io/matrix.h"

namespace {

namespace fs = std::filesystem;
using hubtest::read_file;
using hubtest::TempDir;

struct CliRun {
  int rc;       // exit status, or 128 + signal as a shell reports it
  std::string err;
};

CliRun run_cli(const std::string& env, const std::string& args, const fs::path& dir) {
  const fs::path err = dir / "stderr.txt";
  const std::string cmd = env + " " + std::string(MMEMBED_CLI) + " " + args + " 2> " + err.string() +
                          " > " + (dir / "stdout.txt").string();
  const int status = std::system(cmd.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), read_file(err)};
}

std::vector<nlohmann::json> jsonl(const fs::path& p) {
  std::vector<nlohmann::json> out;
  std::istringstream in(read_file(p));
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

class Workflow : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!server_.ok()) GTEST_SKIP() << server_.skip_reason();
  }
  FakeHub server_{{"--images", std::string(MMEMBED_TEST_DATA_DIR) + "/images", "--repo",
                   "lesson/bridgetower-tiny=" + std::string(MMEMBED_TEST_DATA_DIR) +
                       "/models/bridgetower-large-tiny",
                   "--slow-seconds", "3"}};
};

TEST_F(Workflow, FetchEmbedThroughHubResumeReducePlot) {
  TempDir t;
  // 3 photos x 3 captions, plus one failure of each kind.
  const char* photos[][2] = {{"cat_landscape.jpg", "cat"},
                             {"motorcycle_left.jpg", "motorcycle"},
                             {"motorcycle_portrait.jpg", "motorcycle"}};
  const char* captions[] = {"a photo of a ", "a picture of a ", "an image of a "};
  std::string csv = "id,image,text,label\n";
  int n_good = 0;
  for (const auto& c : captions) {
    for (const auto& p : photos) {
      csv += "good" + std::to_string(n_good++) + "," + server_.url(std::string("/img/") + p[0]) +
             "," + c + p[1] + "," + p[1] + "\n";
    }
  }
  csv += "gone," + server_.url("/img/missing.jpg") + ",not there,none\n";
  csv += "html," + server_.url("/html") + ",a login page,none\n";
  csv += "trunc," + server_.url("/truncated.jpg") + ",half a cat,cat\n";
  csv += "big," + server_.url("/big.bin") + ",too big,none\n";
  csv += "slow," + server_.url("/slow") + ",never answers,none\n";
  hubtest::write_file(t.path() / "pairs.csv", csv);

  // 1. fetch
  const fs::path fetched = t.path() / "fetched";
  CliRun f = run_cli("", "fetch " + (t.path() / "pairs.csv").string() + " -o " + fetched.string() +
                             " --jobs 4 --timeout 0.5 --max-bytes 1000000 --retries 1 --backoff 0.01",
                     t.path());
  EXPECT_EQ(f.rc, 1) << f.err;  // some items failed
  const auto manifest = jsonl(fetched / "manifest.jsonl");
  ASSERT_EQ(manifest.size(), 9u) << f.err;
  std::map<std::string, std::string> reason;
  for (const auto& e : jsonl(fetched / "errors.jsonl")) reason[e["id"]] = e["reason"];
  ASSERT_EQ(reason.size(), 5u);
  EXPECT_EQ(reason["gone"], "HTTP 404");
  EXPECT_NE(reason["html"].find("HTML"), std::string::npos) << reason["html"];
  EXPECT_NE(reason["trunc"].find("truncated"), std::string::npos) << reason["trunc"];
  EXPECT_NE(reason["big"].find("too large"), std::string::npos) << reason["big"];
  EXPECT_NE(reason["slow"].find("timeout"), std::string::npos) << reason["slow"];

  // 2. embed with a Hub model id, served by the imitation Hub into a fresh HF cache; the first
  // run is killed (SIGKILL) right after committing its first chunk.
  const fs::path cache = t.path() / "hf-cache";
  const std::string hub_env = "HF_ENDPOINT=" + server_.url("") + " HF_HUB_CACHE=" + cache.string() +
                              " HF_TOKEN= MMEMBED_PROGRESS=0";
  const fs::path out = t.path() / "embeddings";
  const std::string embed = "--threads 1 embed --model lesson/bridgetower-tiny --input " +
                            (fetched / "manifest.jsonl").string() +
                            " --kind pair --chunk-size 4 --batch-size 2 -o " + out.string();
  CliRun killed = run_cli(hub_env + " MMEMBED_TEST_KILL_AFTER_CHUNKS=1", embed, t.path());
  EXPECT_EQ(killed.rc, 128 + SIGKILL) << killed.err;
  EXPECT_FALSE(fs::exists(out / "run.json"));
  EXPECT_FALSE(fs::exists(out / "embeddings.npy"));
  ASSERT_TRUE(fs::exists(cache / "models--lesson--bridgetower-tiny" / "refs" / "main"));

  // Resumed offline: the model comes from the cache, the first chunk from the killed run.
  CliRun resumed = run_cli(hub_env + " HF_HUB_OFFLINE=1", embed, t.path());
  EXPECT_EQ(resumed.rc, 0) << resumed.err;
  EXPECT_NE(resumed.err.find("embedded 9 of 9 items (0 failed, 1 of 3 chunks resumed"),
            std::string::npos)
      << resumed.err;
  const mmembed::io::Matrix e = mmembed::io::read_matrix((out / "embeddings.npy").string());
  EXPECT_EQ(e.rows, 9);
  EXPECT_EQ(e.cols, 16);
  const auto items = jsonl(out / "items.jsonl");
  ASSERT_EQ(items.size(), 9u);
  std::string labels;
  for (std::size_t i = 0; i < items.size(); ++i) {
    EXPECT_EQ(items[i]["row"], i);
    EXPECT_EQ(items[i]["id"], "good" + std::to_string(i));
    labels += items[i]["label"].get<std::string>() + "\n";
  }
  EXPECT_EQ(read_file(out / "errors.jsonl"), "");
  const auto run = nlohmann::json::parse(read_file(out / "run.json"));
  EXPECT_EQ(run["model"], "lesson/bridgetower-tiny");
  EXPECT_EQ(run["counts"]["resumed_chunks"], 1);
  hubtest::write_file(t.path() / "labels.txt", labels);

  // The same job run uninterrupted elsewhere gives the same embeddings.
  const fs::path clean = t.path() / "clean";
  std::string embed_clean = embed;
  embed_clean.replace(embed_clean.find(out.string()), out.string().size(), clean.string());
  CliRun c = run_cli(hub_env + " HF_HUB_OFFLINE=1", embed_clean, t.path());
  ASSERT_EQ(c.rc, 0) << c.err;
  const mmembed::io::Matrix e2 = mmembed::io::read_matrix((clean / "embeddings.npy").string());
  ASSERT_EQ(e2.data.size(), e.data.size());
  for (std::size_t i = 0; i < e.data.size(); ++i) EXPECT_NEAR(e.data[i], e2.data[i], 1e-6) << i;

  // 3. reduce and 4. plot
  const fs::path coords = t.path() / "umap.csv";
  CliRun r = run_cli("", "--threads 1 reduce --method umap " + (out / "embeddings.npy").string() +
                             " --metric cosine --n-neighbors 4 --labels " +
                             (t.path() / "labels.txt").string() + " -o " + coords.string(),
                     t.path());
  ASSERT_EQ(r.rc, 0) << r.err;
  const std::string csv_out = read_file(coords);
  EXPECT_NE(csv_out.find("motorcycle"), std::string::npos) << csv_out;
  for (const char* ext : {"png", "html"}) {
    const fs::path plot = t.path() / (std::string("umap.") + ext);
    CliRun p = run_cli("", "plot " + coords.string() + " -o " + plot.string() + " --title lesson",
                       t.path());
    EXPECT_EQ(p.rc, 0) << p.err;
    EXPECT_GT(fs::file_size(plot), 1000u) << plot;
  }
}

// Issue #18: a string that is not UTF-8 in a JSON output threw nlohmann's type_error.316. An
// image whose file name is not UTF-8 (Linux allows any bytes) is embedded, and its JSONL line
// carries U+FFFD for the bad byte (docs/hostile-inputs.md, one policy for every JSON output).
TEST(JsonOutputs, InvalidUtf8IsWrittenAsReplacementCharacter) {
  TempDir t;
  const fs::path image = t.path() / "cat\xFF.webp";
  fs::copy_file(fs::path(MMEMBED_TEST_DATA_DIR) / "images" / "cat.webp", image);
  const CliRun r = run_cli("", "embed --model " + std::string(MMEMBED_TEST_DATA_DIR) +
                                   "/models/clip-tiny-gelu --image '" + image.string() + "'",
                           t.path());
  ASSERT_EQ(r.rc, 0) << r.err;
  const auto lines = jsonl(t.path() / "stdout.txt");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].at("image"), (t.path() / "cat\xEF\xBF\xBD.webp").string());
}

}  // namespace
