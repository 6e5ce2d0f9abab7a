// The lesson's applications as commands (issue #21), end to end with the trained toy models:
// index build from the held-out scenes' manifest, search by text / image / pair / id, filters,
// re-ranking with the ITM head, recommend, dedupe; ranks checked against exact search and the
// scenes' labels. And the bad inputs: a broken query image, an unknown id, an index of another
// model, query vectors of another dimension, a second writer, a writer killed during `index add`.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "hub_test_util.h"

namespace {

namespace fs = std::filesystem;
using hubtest::read_file;
using hubtest::TempDir;
using hubtest::write_file;

const std::string kData = MMEMBED_TEST_DATA_DIR;
const std::string kScenes = kData + "/toy-scenes";
const std::string kToyBt = kData + "/models/toy-bridgetower";
const std::string kToyClip = kData + "/models/toy-clip";

struct CliRun {
  int rc;  // exit status, or 128 + signal as a shell reports it
  std::string out, err;
};

CliRun run_cli(const std::string& args, const fs::path& dir, const std::string& env = "") {
  const fs::path out = dir / "stdout.txt", err = dir / "stderr.txt";
  const std::string cmd = env + " " + std::string(MMEMBED_CLI) + " --threads 1 " + args + " 2> " +
                          err.string() + " > " + out.string();
  const int status = std::system(cmd.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), read_file(out),
          read_file(err)};
}

std::vector<nlohmann::json> lines(const std::string& text) {
  std::vector<nlohmann::json> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  }
  return out;
}

struct Scene {
  std::string id, image, text, label;
};

std::vector<Scene> scenes() {
  std::vector<Scene> out;
  std::istringstream in(read_file(kScenes + "/manifest.tsv"));
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream f(line);
    Scene s;
    std::getline(f, s.id, '\t');
    std::getline(f, s.image, '\t');
    std::getline(f, s.text, '\t');
    std::getline(f, s.label, '\t');
    s.image = kScenes + "/" + s.image;
    out.push_back(s);
  }
  return out;
}

// The held-out scenes as two manifests in dir: first.tsv (150 items), second.tsv (the other 50).
void write_split_manifests(const fs::path& dir) {
  const std::vector<Scene> ss = scenes();
  std::string first = "id\timage\ttext\tlabel\n", second = first;
  for (std::size_t i = 0; i < ss.size(); ++i) {
    const std::string row =
        ss[i].id + "\t" + ss[i].image + "\t" + ss[i].text + "\t" + ss[i].label + "\n";
    (i < 150 ? first : second) += row;
  }
  write_file(dir / "first.tsv", first);
  write_file(dir / "second.tsv", second);
}

// Built once for the suite: the toy BridgeTower over the 200 held-out scenes, HNSW forced (the
// collection is small enough to be searched exactly otherwise).
class IndexCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    index_ = (dir_->path() / "scenes.index").string();
    const CliRun r = run_cli("index build --model " + kToyBt + " --input " + kScenes +
                                 "/manifest.tsv -o " + index_ + " --ann hnsw --json",
                             dir_->path());
    ASSERT_EQ(r.rc, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["added"], 200);
    EXPECT_EQ(j["failed"], 0);
    EXPECT_FALSE(fs::exists(index_ + ".build")) << "the work folder is left behind";
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static TempDir* dir_;
  static std::string index_;
};
TempDir* IndexCli::dir_ = nullptr;
std::string IndexCli::index_;

TEST_F(IndexCli, InfoNamesTheModelKindsAndAnn) {
  TempDir t;
  const CliRun r = run_cli("index info " + index_ + " --json", t.path());
  ASSERT_EQ(r.rc, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["items"], 200);
  EXPECT_EQ(j["kinds"], nlohmann::json({"image", "text", "pair"}));
  EXPECT_EQ(j["model"]["family"], "bridgetower");
  EXPECT_EQ(j["model"]["name"], kToyBt);
  EXPECT_EQ(j["model"]["digest"].get<std::string>().substr(0, 7), "sha256:");
  EXPECT_EQ(j["segments"][0]["ann"]["image"], "hnsw");
}

// Text -> image over every caption, through HNSW and exactly: recall@1/@5 by label agree within
// one point, and reach the toy model's (recall@5 >= 0.9).
TEST_F(IndexCli, TextToImageRecallThroughAnnEqualsExact) {
  TempDir t;
  const std::vector<Scene> ss = scenes();
  std::string queries;
  for (const Scene& s : ss)
    queries += s.text + "\n";
  write_file(t.path() / "captions.txt", queries);
  std::map<bool, std::pair<double, double>> recall;  // exact -> (R@1, R@5)
  std::map<bool, std::vector<nlohmann::json>> results;
  for (bool exact : {false, true}) {
    const CliRun r =
        run_cli("search " + index_ + " --queries " + (t.path() / "captions.txt").string() +
                    " -k 5 --json" + (exact ? " --exact" : ""),
                t.path());
    ASSERT_EQ(r.rc, 0) << r.err;
    results[exact] = lines(r.out);
    ASSERT_EQ(results[exact].size(), ss.size());
    double r1 = 0, r5 = 0;
    for (std::size_t i = 0; i < ss.size(); ++i) {
      const auto& res = results[exact][i]["results"];
      ASSERT_EQ(res.size(), 5u);
      EXPECT_EQ(results[exact][i]["query"]["text"], ss[i].text);
      bool hit5 = false;
      for (std::size_t k = 0; k < res.size(); ++k) {
        EXPECT_EQ(res[k]["rank"], k + 1);
        if (k) {
          EXPECT_GE(res[k - 1]["score"].get<double>(), res[k]["score"].get<double>());
        }
        hit5 |= res[k]["label"] == ss[i].label;
      }
      r1 += res[0]["label"] == ss[i].label;
      r5 += hit5;
    }
    recall[exact] = {r1 / ss.size(), r5 / ss.size()};
  }
  EXPECT_NEAR(recall[false].first, recall[true].first, 0.01);
  EXPECT_NEAR(recall[false].second, recall[true].second, 0.01);
  EXPECT_GE(recall[true].second, 0.9);
  EXPECT_GE(recall[true].first, 0.9);
  // Where the same item is found, the score is the same (one metric scores both paths).
  for (std::size_t i = 0; i < ss.size(); ++i) {
    const auto& a = results[false][i]["results"][0];
    const auto& e = results[true][i]["results"][0];
    if (a["id"] == e["id"]) {
      EXPECT_NEAR(a["score"].get<double>(), e["score"].get<double>(), 1e-5);
    }
  }
  std::printf("text->image recall@1 %.3f (exact %.3f), recall@5 %.3f (exact %.3f)\n",
              recall[false].first, recall[true].first, recall[false].second, recall[true].second);
}

TEST_F(IndexCli, ImagePairAndIdQueriesFindTheirOwnKind) {
  TempDir t;
  const std::vector<Scene> ss = scenes();
  const Scene& s = ss[7];
  CliRun r = run_cli("search " + index_ + " --image " + s.image + " -k 3 --json", t.path());
  ASSERT_EQ(r.rc, 0) << r.err;
  auto res = lines(r.out).at(0)["results"];
  EXPECT_EQ(res[0]["id"], s.id);  // an image finds itself first
  EXPECT_NEAR(res[0]["score"].get<double>(), 1.0, 1e-5);
  r = run_cli("search " + index_ + " --pair " + s.image + " '" + s.text + "' -k 3 --json",
              t.path());
  ASSERT_EQ(r.rc, 0) << r.err;
  res = lines(r.out).at(0)["results"];
  EXPECT_EQ(res[0]["id"], s.id);  // and the pair its pair
  EXPECT_NEAR(res[0]["score"].get<double>(), 1.0, 1e-5);
  // --id: the stored vector's neighbours, itself excluded: the image query's results after
  // the image itself.
  r = run_cli("search " + index_ + " --id " + s.id + " -k 4 --json --exact", t.path());
  ASSERT_EQ(r.rc, 0) << r.err;
  res = lines(r.out).at(0)["results"];
  ASSERT_EQ(res.size(), 4u);
  for (const auto& h : res)
    EXPECT_NE(h["id"], s.id) << "--id returned its own item";
  r = run_cli("search " + index_ + " --image " + s.image + " -k 5 --json --exact", t.path());
  ASSERT_EQ(r.rc, 0) << r.err;
  const auto by_image = lines(r.out).at(0)["results"];
  for (std::size_t k = 0; k < 4; ++k) {
    EXPECT_EQ(res[k]["id"], by_image[k + 1]["id"]);
    EXPECT_NEAR(res[k]["score"].get<double>(), by_image[k + 1]["score"].get<double>(), 1e-5);
  }
  // --id with --kind text: the caption's neighbours among the captions.
  r = run_cli("search " + index_ + " --id " + s.id + " --kind text -k 2 --csv", t.path());
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out.substr(0, r.out.find('\n')), "query,rank,score,id,label,text,image");
  // The table names the query and the direction.
  r = run_cli("search " + index_ + " --text 'a red circle' -k 2", t.path());
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("query \"a red circle\" (text -> image, 2 results)"), std::string::npos)
      << r.out;
}

TEST_F(IndexCli, FiltersKeepOnlyMatchingItems) {
  TempDir t;
  const CliRun r =
      run_cli("search " + index_ +
                  " --text 'a photo of a blue star' --filter 'label=red circle' -k 10 --json",
              t.path());
  ASSERT_EQ(r.rc, 0) << r.err;
  const auto res = lines(r.out).at(0)["results"];
  ASSERT_EQ(res.size(), 5u);  // the scenes hold 5 single red circles
  for (const auto& h : res)
    EXPECT_EQ(h["label"], "red circle");
  const CliRun bad = run_cli("search " + index_ + " --text x --filter colour=red", t.path());
  EXPECT_EQ(bad.rc, 1);
  EXPECT_NE(bad.err.find("filter field 'colour'"), std::string::npos) << bad.err;
}

// Re-ranking with the ITM head: the candidates come back ordered by the matching probability,
// which is what `mmembed match` reports for the same image and text. Measured: precision@1 on
// the two-object scenes' captions with and without it (printed; docs/index.md has the numbers).
TEST_F(IndexCli, RerankOrdersByTheMatchingHead) {
  TempDir t;
  const std::vector<Scene> ss = scenes();
  const Scene& s = ss[170];  // a two-object scene
  CliRun r = run_cli(
      "search " + index_ + " --text '" + s.text + "' --rerank itm --rerank-k 10 -k 5 --json",
      t.path());
  ASSERT_EQ(r.rc, 0) << r.err;
  const auto res = lines(r.out).at(0)["results"];
  ASSERT_EQ(res.size(), 5u);
  for (std::size_t k = 1; k < res.size(); ++k) {
    EXPECT_GE(res[k - 1]["score"].get<double>(), res[k]["score"].get<double>());
  }
  const CliRun m =
      run_cli("match --model " + kToyBt + " --image " + res[0]["image"].get<std::string>() +
                  " --text '" + s.text + "' --json",
              t.path());
  ASSERT_EQ(m.rc, 0) << m.err;
  EXPECT_NEAR(nlohmann::json::parse(m.out)["match_probability"].get<double>(),
              res[0]["score"].get<double>(), 1e-6);

  std::string two;
  std::vector<std::string> labels;
  for (const Scene& x : ss) {
    if (x.label.find(" left of ") != std::string::npos) {
      two += x.text + "\n";
      labels.push_back(x.label);
    }
  }
  write_file(t.path() / "two.txt", two);
  double p1[2] = {0, 0};
  for (int rr = 0; rr < 2; ++rr) {
    r = run_cli("search " + index_ + " --queries " + (t.path() / "two.txt").string() +
                    " -k 1 --json" + (rr ? " --rerank itm --rerank-k 10" : ""),
                t.path());
    ASSERT_EQ(r.rc, 0) << r.err;
    const auto all = lines(r.out);
    ASSERT_EQ(all.size(), labels.size());
    for (std::size_t i = 0; i < all.size(); ++i)
      p1[rr] += all[i]["results"][0]["label"] == labels[i];
    p1[rr] /= labels.size();
  }
  std::printf(
      "two-object scenes (%zu captions): precision@1 %.3f by the contrastive vectors, "
      "%.3f after ITM re-ranking of the top 10\n",
      labels.size(), p1[0], p1[1]);
}

// --rerank-cache: the first search computes and keeps each candidate's image features, the
// second reads them (only the text tower and the cross-modal layers run) and gives the same
// results; a damaged cache file is a miss; a cache path that is not a folder is refused.
TEST_F(IndexCli, RerankFeatureCacheGivesTheSameResults) {
  TempDir t;
  const Scene s = scenes()[170];
  const std::string cache = (t.path() / "features").string();
  const std::string cmd = "search " + index_ + " --text '" + s.text +
                          "' --rerank itm --rerank-k 10 -k 10 --json --verbose";
  const CliRun plain = run_cli(cmd, t.path());
  ASSERT_EQ(plain.rc, 0) << plain.err;
  const CliRun first = run_cli(cmd + " --rerank-cache " + cache, t.path());
  ASSERT_EQ(first.rc, 0) << first.err;
  EXPECT_NE(first.err.find("re-ranked 10 candidates (0 image features from the cache"),
            std::string::npos)
      << first.err;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(cache)) files.push_back(e.path());
  ASSERT_EQ(files.size(), 10u);
  const CliRun second = run_cli(cmd + " --rerank-cache " + cache, t.path());
  ASSERT_EQ(second.rc, 0) << second.err;
  EXPECT_NE(second.err.find("re-ranked 10 candidates (10 image features from the cache"),
            std::string::npos)
      << second.err;
  const auto a = lines(plain.out).at(0)["results"], b = lines(first.out).at(0)["results"],
             c = lines(second.out).at(0)["results"];
  ASSERT_EQ(a.size(), 10u);
  for (std::size_t k = 0; k < a.size(); ++k) {
    EXPECT_EQ(a[k]["id"], b[k]["id"]);
    EXPECT_EQ(a[k]["id"], c[k]["id"]);
    EXPECT_NEAR(a[k]["score"].get<double>(), c[k]["score"].get<double>(), 1e-6);
  }
  // A truncated file and a file of garbage: misses, recomputed and rewritten.
  fs::resize_file(files[0], fs::file_size(files[0]) / 2);
  write_file(files[1], std::string(fs::file_size(files[2]), 'x'));
  const CliRun third = run_cli(cmd + " --rerank-cache " + cache, t.path());
  ASSERT_EQ(third.rc, 0) << third.err;
  EXPECT_NE(third.err.find("(8 image features from the cache"), std::string::npos) << third.err;
  const auto d = lines(third.out).at(0)["results"];
  ASSERT_EQ(d.size(), c.size());
  for (std::size_t k = 0; k < d.size(); ++k) {
    EXPECT_EQ(d[k]["id"], c[k]["id"]);
    EXPECT_NEAR(d[k]["score"].get<double>(), c[k]["score"].get<double>(), 1e-6);
  }
  EXPECT_EQ(fs::file_size(files[0]), fs::file_size(files[2]));
  // (The size bound is tested on the library: tests/unit/index/feature_cache_test.cc.)
  const CliRun alone = run_cli(
      "search " + index_ + " --text '" + s.text + "' --rerank-cache " + cache, t.path());
  EXPECT_EQ(alone.rc, 1);
  EXPECT_NE(alone.err.find("--rerank-cache keeps features for --rerank itm"), std::string::npos)
      << alone.err;
  write_file(t.path() / "not-a-folder", "x");
  const CliRun bad =
      run_cli(cmd + " --rerank-cache " + (t.path() / "not-a-folder").string(), t.path());
  EXPECT_EQ(bad.rc, 1);
  EXPECT_NE(bad.err.find("not-a-folder: the feature cache must be a folder"), std::string::npos)
      << bad.err;
}

TEST_F(IndexCli, RecommendExcludesTheSeedsAndFollowsThem) {
  TempDir t;
  // Three red stars liked: more stars come back (the toy model's joint vectors cluster by
  // shape; its image vectors by colour as much).
  const CliRun r = run_cli(
      "recommend " + index_ + " --like s003 --like s033 --like s063 --kind pair -k 5 --json",
      t.path());
  ASSERT_EQ(r.rc, 0) << r.err;
  const auto res = lines(r.out).at(0)["results"];
  ASSERT_EQ(res.size(), 5u);
  for (const auto& h : res) {
    EXPECT_TRUE(h["id"] != "s003" && h["id"] != "s033" && h["id"] != "s063");
    EXPECT_NE(h["label"].get<std::string>().find("star"), std::string::npos) << h.dump();
  }
  const CliRun mmr =
      run_cli("recommend " + index_ + " --like s003 --mmr 0.3 -k 5 --json", t.path());
  ASSERT_EQ(mmr.rc, 0) << mmr.err;
  EXPECT_EQ(lines(mmr.out).at(0)["results"].size(), 5u);
  const CliRun bad = run_cli("recommend " + index_ + " --like nope", t.path());
  EXPECT_EQ(bad.rc, 1);
  EXPECT_NE(bad.err.find("no item with id 'nope'"), std::string::npos) << bad.err;
}

TEST_F(IndexCli, DedupeGroupsAndWritesOneItemPerGroup) {
  TempDir t;
  const fs::path groups = t.path() / "groups.jsonl", manifest = t.path() / "dedup.jsonl";
  CliRun r = run_cli("dedupe " + index_ + " --threshold 0.99 -o " + groups.string() +
                         " --manifest-out " + manifest.string(),
                     t.path());
  ASSERT_EQ(r.rc, 0) << r.err;
  const auto gs = lines(read_file(groups));
  ASSERT_FALSE(gs.empty());
  std::size_t dropped = 0;
  for (const auto& g : gs) {
    ASSERT_GE(g["items"].size(), 2u);
    EXPECT_EQ(g["keep"], g["items"][0]["id"]);
    EXPECT_GE(g["min_score"].get<double>(), 0.99);
    dropped += g["items"].size() - 1;
  }
  const auto kept = lines(read_file(manifest));
  EXPECT_EQ(kept.size(), 200 - dropped);
  // The stats show where 0.99 lies among the nearest-neighbour scores.
  r = run_cli("index stats " + index_ + " --json", t.path());
  ASSERT_EQ(r.rc, 0) << r.err;
  const auto st = nlohmann::json::parse(r.out);
  EXPECT_EQ(st["sampled"], 200);
  EXPECT_GE(st["nearest"].back().get<double>(), 0.99);
}

TEST_F(IndexCli, BadQueriesFailAloneWithClearErrors) {
  TempDir t;
  const std::string truncated = (t.path() / "broken.png").string();
  const std::string png = read_file(kScenes + "/scene_000.png");
  write_file(truncated, png.substr(0, png.size() / 2));
  CliRun r =
      run_cli("search " + index_ + " --image " + truncated + " --text 'a red circle' -k 2 --json",
              t.path());
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("broken.png"), std::string::npos) << r.err;
  EXPECT_EQ(lines(r.out).size(), 1u) << "the good query still runs";
  r = run_cli("search " + index_ + " --id no-such-item", t.path());
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("no item with id 'no-such-item'"), std::string::npos) << r.err;
  // Another model's query: refused, naming both.
  r = run_cli("search " + index_ + " --text 'a red circle' --model " + kToyClip, t.path());
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("was built with the model '" + kToyBt + "'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("toy-clip"), std::string::npos) << r.err;
  // Query vectors of another dimension.
  write_file(t.path() / "q.csv", "0.1,0.2,0.3\n");
  r = run_cli("search " + index_ + " --vectors " + (t.path() / "q.csv").string(), t.path());
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("vectors of 3 dimensions; "), std::string::npos) << r.err;
  r = run_cli("search " + (t.path() / "nothing").string() + " --text x", t.path());
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("no such index folder"), std::string::npos) << r.err;
  // index build over an existing index is refused; nothing is lost.
  r = run_cli(
      "index build --model " + kToyBt + " --input " + kScenes + "/manifest.tsv -o " + index_,
      t.path());
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("already exists"), std::string::npos) << r.err;
}

// An index built with --dtype bf16 records it, and its queries and additions run in bf16
// (a query embedded in bf16 finds its own scene first, as in fp32).
TEST(IndexCliDtype, Bf16IsRecordedAndUsedForQueries) {
  TempDir t;
  write_split_manifests(t.path());
  const std::string index = (t.path() / "b.index").string();
  CliRun r = run_cli("index build --model " + kToyClip + " --dtype bf16 --input " +
                         (t.path() / "second.tsv").string() + " -o " + index,
                     t.path());
  ASSERT_EQ(r.rc, 0) << r.err;
  r = run_cli("index info " + index + " --json", t.path());
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["model"]["dtype"], "bf16") << r.out;
  const Scene s = scenes()[160];
  r = run_cli("search " + index + " --image " + s.image + " -k 1 --json", t.path());
  ASSERT_EQ(r.rc, 0) << r.err;
  const auto hits = lines(r.out).at(0)["results"];
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0]["id"], s.id);
  EXPECT_NEAR(hits[0]["score"].get<double>(), 1.0, 1e-6);  // the same bf16 vector as stored
}

// Writers: a second one is refused while one holds the index; one killed (SIGKILL) during `index
// add` leaves the index as it was, and the add then goes through.
TEST(IndexCliWriters, ConcurrentWriterAndKillDuringAdd) {
  TempDir t;
  write_split_manifests(t.path());
  const std::string index = (t.path() / "c.index").string();
  // A build killed before its update commits: the same command goes on from its work folder.
  CliRun r = run_cli("index build --model " + kToyClip + " --input " +
                         (t.path() / "first.tsv").string() + " -o " + index,
                     t.path(), "MMEMBED_TEST_CRASH=add:segment-written");
  ASSERT_EQ(r.rc, 128 + SIGKILL) << r.err;
  r = run_cli("index build --model " + kToyClip + " --input " + (t.path() / "first.tsv").string() +
                  " -o " + index,
              t.path());
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.err.find("resuming the interrupted build"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(index + ".build"));
  // ... but not over an index that has items, nor with another model.
  r = run_cli("index build --model " + kToyClip + " --input " + (t.path() / "first.tsv").string() +
                  " -o " + index,
              t.path());
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("already exists"), std::string::npos) << r.err;
  {
    const int fd = ::open((index + "/.lock").c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
    r = run_cli("index add " + index + " --input " + (t.path() / "second.tsv").string(), t.path());
    ::close(fd);
  }
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("another process is writing to this index"), std::string::npos) << r.err;
  for (const char* point : {"add:segment-written", "add:before-commit"}) {
    r = run_cli("index add " + index + " --input " + (t.path() / "second.tsv").string(), t.path(),
                std::string("MMEMBED_TEST_CRASH=") + point);
    EXPECT_EQ(r.rc, 128 + SIGKILL) << point << ": " << r.err;
    r = run_cli("index info " + index + " --json", t.path());
    ASSERT_EQ(r.rc, 0) << r.err;
    EXPECT_EQ(nlohmann::json::parse(r.out)["items"], 150) << point;
    r = run_cli("search " + index + " --text 'a red circle' -k 1 --json", t.path());
    ASSERT_EQ(r.rc, 0) << r.err;
  }
  r = run_cli("index add " + index + " --input " + (t.path() / "second.tsv").string() + " --json",
              t.path());
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["added"], 50);
  // Adding the same items again: each fails alone as a duplicate.
  r = run_cli("index add " + index + " --input " + (t.path() / "second.tsv").string() + " --json",
              t.path());
  EXPECT_EQ(r.rc, 1);
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["added"], 0);
  EXPECT_EQ(j["failed"], 50);
  EXPECT_NE(j["failures"][0]["error"].get<std::string>().find("already in the index"),
            std::string::npos);
  // rm, then the removed items are gone from search and the count.
  r = run_cli("index rm " + index + " s150 s151 --json", t.path());
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["items"], 198);
  r = run_cli("index rm " + index + " s150", t.path());
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("no item with id 's150'"), std::string::npos) << r.err;
  r = run_cli("index compact " + index, t.path());
  ASSERT_EQ(r.rc, 0) << r.err;
  r = run_cli("index info " + index + " --json", t.path());
  const auto info = nlohmann::json::parse(r.out);
  EXPECT_EQ(info["segments"].size(), 1u);
  EXPECT_EQ(info["rows"], 198);
}

// SIGKILL at arbitrary instants of `index add` (while embedding, writing the segment, committing):
// every time the index opens with the old 150 items or the new 200, searches, and takes the add
// again.
TEST(IndexCliWriters, KillAtAnyInstantOfAddLosesNothing) {
  TempDir t;
  write_split_manifests(t.path());
  const fs::path pristine = t.path() / "pristine.index";
  CliRun r = run_cli("index build --model " + kToyClip + " --input " +
                         (t.path() / "first.tsv").string() + " -o " + pristine.string(),
                     t.path());
  ASSERT_EQ(r.rc, 0) << r.err;
  int old_state = 0, new_state = 0;
  for (int delay_ms = 0; delay_ms <= 250; delay_ms += 6) {
    SCOPED_TRACE("killed after " + std::to_string(delay_ms) + " ms");
    const fs::path index = t.path() / "work.index";
    fs::remove_all(index);
    fs::remove_all(index.string() + ".build");
    fs::copy(pristine, index, fs::copy_options::recursive);
    const std::string second_tsv = (t.path() / "second.tsv").string();
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      const int null = ::open("/dev/null", O_WRONLY);
      ::dup2(null, 1);
      ::dup2(null, 2);
      ::execl(MMEMBED_CLI, MMEMBED_CLI, "--threads", "1", "index", "add", index.c_str(), "--input",
              second_tsv.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::usleep(static_cast<useconds_t>(delay_ms) * 1000);
    ::kill(pid, SIGKILL);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    r = run_cli("index info " + index.string() + " --json", t.path());
    ASSERT_EQ(r.rc, 0) << r.err;
    const int items = nlohmann::json::parse(r.out)["items"].get<int>();
    EXPECT_TRUE(items == 150 || items == 200) << items;
    (items == 150 ? old_state : new_state) += 1;
    r = run_cli("search " + index.string() + " --text 'a red circle' -k 1 --json", t.path());
    ASSERT_EQ(r.rc, 0) << r.err;
    if (items == 150) {
      r = run_cli("index add " + index.string() + " --input " + second_tsv + " --json", t.path());
      ASSERT_EQ(r.rc, 0) << r.err;
      EXPECT_EQ(nlohmann::json::parse(r.out)["added"], 50);
    }
  }
  std::printf("killed %d times: %d in the old state, %d in the new\n", old_state + new_state,
              old_state, new_state);
  EXPECT_GT(old_state, 0);  // some kills landed before the commit
}

}  // namespace
