// `mmembed fetch` end to end against the fake image host: exit codes, manifest.jsonl,
// errors.jsonl, and a rerun that requests nothing already stored.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <nlohmann/json.hpp>

#include <map>
#include <sstream>

#include "hub_test_util.h"

namespace {

namespace fs = std::filesystem;
using hubtest::read_file;
using hubtest::TempDir;

struct CliRun {
  int rc;
  std::string err;
};

CliRun run_cli(const std::string& args, const fs::path& dir) {
  fs::path err = dir / "stderr.txt";
  std::string cmd = std::string(MMEMBED_CLI) + " " + args + " 2> " + err.string();
  int status = std::system(cmd.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, read_file(err)};
}

std::vector<nlohmann::json> jsonl(const fs::path& p) {
  std::vector<nlohmann::json> out;
  std::istringstream in(read_file(p));
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  }
  return out;
}

class FetchCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!server_.ok()) GTEST_SKIP() << server_.skip_reason();
  }
  FakeHub server_{{"--images", std::string(MMEMBED_TEST_DATA_DIR) + "/images", "--slow-seconds", "3"}};
};

TEST_F(FetchCli, DownloadsReportsFailuresAndResumesWithoutRefetching) {
  TempDir t;
  const std::string local = std::string(MMEMBED_TEST_DATA_DIR) + "/images/gray.jpg";
  std::string csv = "id,image,text,label\n";
  csv += "cat," + server_.url("/img/cat.webp") + ",\"a cat, lying\",cat\n";
  csv += "png," + server_.url("/img/astronaut_square.png") + ",an astronaut,person\n";
  csv += "html," + server_.url("/html") + ",a login page,none\n";
  csv += "trunc," + server_.url("/truncated.jpg") + ",half a cat,cat\n";
  csv += "big," + server_.url("/big.bin") + ",too big,none\n";
  csv += "gone," + server_.url("/img/missing.jpg") + ",not there,none\n";
  csv += "slow," + server_.url("/slow") + ",never answers,none\n";
  csv += "local," + local + ",a local file,gray\n";
  hubtest::write_file(t.path() / "pairs.csv", csv);
  const fs::path out = t.path() / "out";
  const std::string args = "fetch " + (t.path() / "pairs.csv").string() + " -o " + out.string() +
                           " --jobs 4 --timeout 0.5 --max-bytes 1000000 --retries 1 --backoff 0.01"
                           " --progress always";
  CliRun r = run_cli(args, t.path());
  EXPECT_EQ(r.rc, 1) << r.err;
  EXPECT_NE(r.err.find("8 items: 2 downloaded, 0 already cached, 1 local, 5 failed"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("/s"), std::string::npos) << r.err;  // the forced progress bar

  auto items = jsonl(out / "manifest.jsonl");
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0]["id"], "cat");
  EXPECT_EQ(items[0]["text"], "a cat, lying");
  EXPECT_EQ(items[0]["label"], "cat");
  EXPECT_EQ(items[0]["source"], server_.url("/img/cat.webp"));
  const std::string img0 = items[0]["image"];
  EXPECT_EQ(img0.rfind("images/", 0), 0u) << img0;
  EXPECT_EQ(read_file(out / img0), read_file(std::string(MMEMBED_TEST_DATA_DIR) + "/images/cat.webp"));
  EXPECT_EQ(items[1]["id"], "png");
  EXPECT_EQ(items[2]["image"], local);

  auto errors = jsonl(out / "errors.jsonl");
  ASSERT_EQ(errors.size(), 5u);
  std::map<std::string, std::string> reason;
  for (const auto& e : errors) {
    reason[e["id"]] = e["reason"];
    EXPECT_TRUE(e.contains("url"));
    EXPECT_TRUE(e.contains("line"));
  }
  EXPECT_NE(reason["html"].find("HTML"), std::string::npos) << reason["html"];
  EXPECT_NE(reason["trunc"].find("truncated JPEG"), std::string::npos) << reason["trunc"];
  EXPECT_NE(reason["big"].find("too large"), std::string::npos) << reason["big"];
  EXPECT_EQ(reason["gone"], "HTTP 404");
  EXPECT_NE(reason["slow"].find("timeout"), std::string::npos) << reason["slow"];
  for (const auto& e : fs::directory_iterator(out / "images"))
    EXPECT_NE(e.path().extension(), ".part") << e.path();

  // Rerun: the stored images are not requested again; only the failures are retried.
  hubtest::reset(server_);
  CliRun again = run_cli(args, t.path());
  EXPECT_EQ(again.rc, 1);
  EXPECT_NE(again.err.find("0 downloaded, 2 already cached"), std::string::npos) << again.err;
  for (const auto& req : hubtest::requests(server_)) {
    EXPECT_NE(req.path, "/img/cat.webp");
    EXPECT_NE(req.path, "/img/astronaut_square.png");
  }
  EXPECT_EQ(jsonl(out / "manifest.jsonl").size(), 3u);

  // All good: exit code 0 and an empty errors file.
  hubtest::write_file(t.path() / "good.jsonl",
                      "{\"id\": \"a\", \"image\": \"" + server_.url("/img/cat.webp") + "\", \"text\": \"x\"}\n");
  CliRun ok = run_cli("fetch " + (t.path() / "good.jsonl").string() + " -o " + out.string() +
                       " --progress never", t.path());
  EXPECT_EQ(ok.rc, 0) << ok.err;
  EXPECT_EQ(read_file(out / "errors.jsonl"), "");
}

TEST_F(FetchCli, InvalidManifestIsReportedWithLines) {
  TempDir t;
  hubtest::write_file(t.path() / "bad.csv", "id,image,text\na,http://h/1.jpg,x\na,http://h/2.jpg,y\n");
  CliRun r = run_cli("fetch " + (t.path() / "bad.csv").string() + " -o " + (t.path() / "o").string(),
                  t.path());
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("bad.csv:3: duplicate id 'a' (first on line 2)"), std::string::npos) << r.err;
}

}  // namespace
