// resolve_model() against the fake Hub: the cache layout huggingface_hub writes, reuse of a cache
// written by huggingface_hub itself (tests/data/hub/py_cache), offline mode, tokens, redirects,
// resume, checksums.
#include <gtest/gtest.h>

#include <algorithm>

#include "hub/cache.h"
#include "hub/http.h"
#include "hub/import.h"
#include "hub/resolve.h"
#include "hub/sha256.h"
#include "hub_test_util.h"
#include "mmembed/hub.h"
#include "test_support.h"

namespace mmembed::hub {
namespace {

using hubtest::count;
using hubtest::read_file;
using hubtest::TempDir;
using hubtest::write_file;
using mmembed::testing_support::error_of;

const std::string kTinyDir = std::string(MMEMBED_TEST_DATA_DIR) + "/hub/repo-tiny";
const std::string kPyCache = std::string(MMEMBED_TEST_DATA_DIR) + "/hub/py_cache";
// The commit fake_hub.py derives for repo-tiny served as org/tiny (recorded in py_cache).
const std::string kTinyCommit = "1a5fe6c394df20de001cccaee4c006e3f7669769";

class ResolveTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    repos_ = new TempDir;
    const fs::path r = repos_->path();
    // org/big: an LFS file large enough to be dropped mid-body by the CDN.
    write_file(r / "big/config.json", "{\"model_type\": \"big\"}\n");
    write_file(r / "big/model.safetensors", hubtest::random_bytes(300000, 1));
    // org/sharded: index + two shards.
    write_file(r / "sharded/config.json", "{}\n");
    write_file(r / "sharded/model.safetensors.index.json",
               "{\"metadata\": {}, \"weight_map\": {\"a\": \"model-00001-of-00002.safetensors\", "
               "\"b\": \"model-00002-of-00002.safetensors\", \"c\": \"model-00001-of-00002.safetensors\"}}");
    write_file(r / "sharded/model-00001-of-00002.safetensors", hubtest::random_bytes(1000, 2));
    write_file(r / "sharded/model-00002-of-00002.safetensors", hubtest::random_bytes(1000, 3));
    write_file(r / "binonly/config.json", "{}\n");
    write_file(r / "binonly/pytorch_model.bin", hubtest::random_bytes(500, 4));
    write_file(r / "noweights/config.json", "{}\n");
    server_ = new FakeHub({"--repo", "org/tiny=" + kTinyDir, "--repo", "org/gated=" + kTinyDir,
                           "--repo", "org/big=" + (r / "big").string(),
                           "--repo", "org/sharded=" + (r / "sharded").string(),
                           "--repo", "org/binonly=" + (r / "binonly").string(),
                           "--repo", "org/noweights=" + (r / "noweights").string(),
                           // Short names: "tiny" is sentence-transformers/tiny, "gpt2" itself.
                           "--repo", "sentence-transformers/tiny=" + kTinyDir,
                           "--repo", "gpt2=" + kTinyDir,
                           "--gated", "org/gated", "--token", "hf_secret",
                           "--rename", "old/tiny=org/tiny", "--drop-cdn-once"});
  }
  static void TearDownTestSuite() {
    delete server_;
    delete repos_;
  }
  void SetUp() override {
    if (!server_->ok()) GTEST_SKIP() << server_->skip_reason();
    hubtest::reset(*server_);
  }
  ResolveOptions options(bool offline = false) const {
    ResolveOptions o;
    o.cache_dir = cache_.path().string();
    o.endpoint = server_->base();
    o.token = "";  // none, whatever the environment says
    o.offline = offline;
    o.progress = Progress::kNever;
    o.backoff_s = 0.01;
    o.etag_timeout_s = 5;
    o.download_timeout_s = 5;
    return o;
  }
  std::string etag_of(const std::string& repo, const std::string& file) const {
    HttpOptions o;
    o.follow_redirects = false;
    auto r = http_head(server_->url("/" + repo + "/resolve/main/" + file), o);
    auto e = r.header("X-Linked-Etag");
    return normalize_etag(e ? *e : r.header("ETag").value_or(""));
  }
  static FakeHub* server_;
  static TempDir* repos_;
  TempDir cache_;
};
FakeHub* ResolveTest::server_ = nullptr;
TempDir* ResolveTest::repos_ = nullptr;

TEST_F(ResolveTest, DownloadsIntoTheHuggingFaceLayout) {
  ResolvedModel m = resolve_model_info("org/tiny", options());
  const fs::path storage = cache_.path() / "models--org--tiny";
  EXPECT_EQ(m.commit, kTinyCommit);
  EXPECT_EQ(m.dir, storage / "snapshots" / kTinyCommit);
  EXPECT_EQ(read_file(storage / "refs" / "main"), kTinyCommit);  // no newline
  for (const char* f : {"config.json", "tokenizer.json", "preprocessor_config.json", "model.safetensors"}) {
    fs::path p = m.dir / f;
    ASSERT_TRUE(fs::is_symlink(p)) << f;
    EXPECT_EQ(fs::read_symlink(p), fs::path("../../blobs") / etag_of("org/tiny", f)) << f;
    EXPECT_EQ(read_file(p), read_file(kTinyDir + "/" + f)) << f;
  }
  // LFS files are named by the SHA-256 of their content, regular files by their git blob id.
  EXPECT_EQ(fs::read_symlink(m.dir / "model.safetensors").filename().string(),
            sha256_file_hex(kTinyDir + "/model.safetensors"));
  EXPECT_EQ(fs::read_symlink(m.dir / "config.json").filename().string().size(), 40u);
  // Optional files that do not exist are recorded as Python does.
  EXPECT_TRUE(fs::is_regular_file(storage / ".no_exist" / kTinyCommit / "vocab.txt"));
  EXPECT_TRUE(fs::is_regular_file(storage / ".no_exist" / kTinyCommit / "1_Pooling/config.json"));
  std::vector<std::string> want = {"config.json", "tokenizer.json", "preprocessor_config.json",
                                   "model.safetensors"};
  std::sort(want.begin(), want.end());
  auto got = m.downloaded;
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, want);
  // No partial files or temporaries left behind.
  for (const auto& e : fs::recursive_directory_iterator(storage)) {
    EXPECT_EQ(e.path().string().find(".incomplete"), std::string::npos) << e.path();
    EXPECT_EQ(e.path().string().find(".tmp"), std::string::npos) << e.path();
  }
  // The LFS file came from the "CDN" (another host name), without the Authorization header.
  bool cdn = false;
  for (const auto& r : hubtest::requests(*server_)) {
    if (r.path.rfind("/cdn/", 0) == 0) {
      cdn = true;
      EXPECT_EQ(r.host.rfind("localhost:", 0), 0u);
    }
  }
  EXPECT_TRUE(cdn);
}

TEST_F(ResolveTest, RerunDownloadsNothingAndOfflineMakesNoRequest) {
  resolve_model_info("org/tiny", options());
  hubtest::reset(*server_);
  ResolvedModel again = resolve_model_info("org/tiny", options());
  auto log = hubtest::requests(*server_);
  EXPECT_EQ(count(log, "GET"), 0);
  EXPECT_GT(count(log, "HEAD"), 0);
  EXPECT_TRUE(again.downloaded.empty());

  hubtest::reset(*server_);
  ResolvedModel offline = resolve_model_info("org/tiny", options(/*offline=*/true));
  EXPECT_EQ(offline.dir, again.dir);
  EXPECT_TRUE(hubtest::requests(*server_).empty());
  // A commit revision that is cached needs no request either.
  ResolveOptions by_commit = options();
  by_commit.revision = kTinyCommit;
  hubtest::reset(*server_);
  EXPECT_EQ(resolve_model_info("org/tiny", by_commit).dir, again.dir);
  EXPECT_EQ(count(hubtest::requests(*server_), "GET"), 0);
}

TEST_F(ResolveTest, ReusesACacheWrittenByHuggingfaceHub) {
  fs::copy(kPyCache, cache_.path(), fs::copy_options::recursive | fs::copy_options::copy_symlinks);
  ResolvedModel offline = resolve_model_info("org/tiny", options(/*offline=*/true));
  EXPECT_EQ(offline.dir, cache_.path() / "models--org--tiny" / "snapshots" / kTinyCommit);
  EXPECT_EQ(read_file(offline.dir / "model.safetensors"), read_file(kTinyDir + "/model.safetensors"));
  EXPECT_TRUE(hubtest::requests(*server_).empty());
  ResolvedModel online = resolve_model_info("org/tiny", options());
  EXPECT_EQ(online.dir, offline.dir);
  EXPECT_TRUE(online.downloaded.empty());
  EXPECT_EQ(count(hubtest::requests(*server_), "GET"), 0);
}

TEST_F(ResolveTest, OfflineNamesTheMissingFilesAndTheWayOut) {
  std::string msg = error_of<HubError>([&] { resolve_model_info("org/tiny", options(true)); });
  EXPECT_NE(msg.find("org/tiny"), std::string::npos) << msg;
  EXPECT_NE(msg.find("config.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("model weights"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--model DIR"), std::string::npos) << msg;
  EXPECT_NE(msg.find("HF_HUB_OFFLINE"), std::string::npos) << msg;
  EXPECT_TRUE(hubtest::requests(*server_).empty());

  // Partly cached: only the weights are named.
  ResolvedModel m = resolve_model_info("org/tiny", options());
  fs::remove(m.dir / "model.safetensors");
  msg = error_of<HubError>([&] { resolve_model_info("org/tiny", options(true)); });
  EXPECT_NE(msg.find("missing model weights"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("config.json"), std::string::npos) << msg;
}

TEST_F(ResolveTest, TokenGoesToTheEndpointOnly) {
  std::string msg = error_of<HubError>([&] { resolve_model_info("org/gated", options()); });
  EXPECT_NE(msg.find("401"), std::string::npos) << msg;
  EXPECT_NE(msg.find("GatedRepo"), std::string::npos) << msg;
  EXPECT_NE(msg.find("HF_TOKEN"), std::string::npos) << msg;

  hubtest::reset(*server_);
  ResolveOptions o = options();
  o.token = "hf_secret";
  ResolvedModel m = resolve_model_info("org/gated", o);
  EXPECT_EQ(read_file(m.dir / "config.json"), read_file(kTinyDir + "/config.json"));
  int resolves = 0, cdn = 0;
  for (const auto& r : hubtest::requests(*server_)) {
    if (r.path.find("/resolve/") != std::string::npos) {
      ++resolves;
      EXPECT_EQ(r.authorization, "Bearer hf_secret") << r.path;
    } else if (r.path.rfind("/cdn/", 0) == 0) {
      ++cdn;
      EXPECT_EQ(r.authorization, "") << "token leaked to the CDN";
    }
  }
  EXPECT_GT(resolves, 0);
  EXPECT_GT(cdn, 0);
}

TEST_F(ResolveTest, FollowsRelativeRedirectsOfRenamedRepos) {
  ResolvedModel m = resolve_model_info("old/tiny", options());
  EXPECT_EQ(m.commit, kTinyCommit);
  EXPECT_EQ(m.dir, cache_.path() / "models--old--tiny" / "snapshots" / kTinyCommit);
  EXPECT_EQ(read_file(m.dir / "config.json"), read_file(kTinyDir + "/config.json"));
}

TEST_F(ResolveTest, ResumesAfterTheCdnDropsTheConnection) {
  ResolvedModel m = resolve_model_info("org/big", options());
  const std::string want = read_file(repos_->path() / "big/model.safetensors");
  EXPECT_EQ(read_file(m.dir / "model.safetensors"), want);
  std::vector<std::string> ranges;
  for (const auto& r : hubtest::requests(*server_)) {
    if (r.path.rfind("/cdn/", 0) == 0) ranges.push_back(r.range);
  }
  ASSERT_EQ(ranges.size(), 2u);
  EXPECT_EQ(ranges[0], "");
  EXPECT_EQ(ranges[1], "bytes=" + std::to_string(want.size() / 2) + "-");
}

TEST_F(ResolveTest, ContinuesAnIncompleteBlobFromAnEarlierRun) {
  const std::string want = read_file(repos_->path() / "big/model.safetensors");
  const std::string sha = sha256_hex(want);
  fs::path blobs = cache_.path() / "models--org--big" / "blobs";
  write_file(blobs / (sha + ".incomplete"), want.substr(0, 123456));
  ResolvedModel m = resolve_model_info("org/big", options());
  EXPECT_EQ(read_file(m.dir / "model.safetensors"), want);
  EXPECT_FALSE(fs::exists(blobs / (sha + ".incomplete")));
  for (const auto& r : hubtest::requests(*server_)) {
    if (r.path.rfind("/cdn/", 0) == 0) {
      EXPECT_EQ(r.range, "bytes=123456-");
    }
  }
}

TEST_F(ResolveTest, ACorruptPartialFileIsRejectedNotInstalled) {
  const std::string want = read_file(repos_->path() / "big/model.safetensors");
  const std::string sha = sha256_hex(want);
  fs::path blobs = cache_.path() / "models--org--big" / "blobs";
  write_file(blobs / (sha + ".incomplete"), std::string(1000, 'x'));  // wrong prefix
  std::string msg = error_of<HubError>([&] { resolve_model_info("org/big", options()); });
  EXPECT_NE(msg.find("checksum mismatch"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(blobs / sha));
  EXPECT_FALSE(fs::exists(blobs / (sha + ".incomplete")));
  // The next run starts over and succeeds.
  ResolvedModel m = resolve_model_info("org/big", options());
  EXPECT_EQ(read_file(m.dir / "model.safetensors"), want);
}

TEST_F(ResolveTest, ShardedAndBinOnlyWeights) {
  ResolvedModel s = resolve_model_info("org/sharded", options());
  for (const char* f : {"model.safetensors.index.json", "model-00001-of-00002.safetensors",
                        "model-00002-of-00002.safetensors"}) {
    EXPECT_EQ(read_file(s.dir / f), read_file(repos_->path() / "sharded" / f)) << f;
    EXPECT_NE(std::find(s.files.begin(), s.files.end(), f), s.files.end()) << f;
  }
  ResolvedModel b = resolve_model_info("org/binonly", options());
  EXPECT_TRUE(fs::exists(b.dir / "pytorch_model.bin"));
  EXPECT_FALSE(fs::exists(b.dir / "model.safetensors"));
  EXPECT_TRUE(fs::exists(cache_.path() / "models--org--binonly" / ".no_exist" / b.commit / "model.safetensors"));
  // Offline, the bin-only snapshot is complete.
  EXPECT_EQ(resolve_model_info("org/binonly", options(true)).dir, b.dir);
}

TEST_F(ResolveTest, ErrorsNameTheRepositoryAndTheProblem) {
  std::string msg = error_of<HubError>([&] { resolve_model_info("org/noweights", options()); });
  EXPECT_NE(msg.find("has no model weights"), std::string::npos) << msg;
  msg = error_of<HubError>([&] { resolve_model_info("org/missing", options()); });
  EXPECT_NE(msg.find("RepoNotFound"), std::string::npos) << msg;
  ResolveOptions o = options();
  o.revision = "v9";
  msg = error_of<HubError>([&] { resolve_model_info("org/tiny", o); });
  EXPECT_NE(msg.find("revision 'v9' not found"), std::string::npos) << msg;
}

TEST_F(ResolveTest, NetworkFailureFallsBackToTheCache) {
  ResolveOptions down = options();
  down.endpoint = "http://127.0.0.1:1";  // refused
  down.retries = 0;
  std::string msg = error_of<HubError>([&] { resolve_model_info("org/tiny", down); });
  EXPECT_NE(msg.find("cannot reach"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--model DIR"), std::string::npos) << msg;
  ResolvedModel m = resolve_model_info("org/tiny", options());
  EXPECT_EQ(resolve_model_info("org/tiny", down).dir, m.dir);
}

// The other direction: huggingface_hub (offline) reads a cache written by mmembed. Needs a Python
// with huggingface_hub: $MMEMBED_HF_PYTHON, else the repository's .venv-ref.
TEST_F(ResolveTest, HuggingfaceHubReadsOurCache) {
  std::string python;
  if (const char* p = std::getenv("MMEMBED_HF_PYTHON"); p && *p) python = p;
  else if (fs::exists(std::string(MMEMBED_SOURCE_DIR) + "/.venv-ref/bin/python"))
    python = std::string(MMEMBED_SOURCE_DIR) + "/.venv-ref/bin/python";
  if (python.empty() ||
      std::system((python + " -c 'import huggingface_hub' 2>/dev/null").c_str()) != 0)
    GTEST_SKIP() << "no Python with huggingface_hub (set MMEMBED_HF_PYTHON) to read our cache";
  resolve_model_info("org/tiny", options());
  std::string cmd = python + " " + MMEMBED_SOURCE_DIR + "/scripts/reference/gen_hub_cache.py --check-ours " +
                    cache_.path().string() + " > " + (cache_.path() / "py.txt").string() + " 2>&1";
  int rc = std::system(cmd.c_str());
  std::string out = read_file(cache_.path() / "py.txt");
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("read mmembed's cache offline: 4 files ok"), std::string::npos) << out;
}

// A short name asks the Hub for the repository sentence-transformers would ask for, and the
// result says which one that was.
TEST_F(ResolveTest, AShortNameAsksForTheSentenceTransformersRepository) {
  const ResolvedModel m = resolve_model_info("tiny", options());
  EXPECT_EQ(m.spec, "tiny");
  EXPECT_EQ(m.repo_id, "sentence-transformers/tiny");
  EXPECT_EQ(m.dir.parent_path().parent_path().filename(), "models--sentence-transformers--tiny");
  auto rs = hubtest::requests(*server_);
  ASSERT_FALSE(rs.empty());
  for (const auto& r : rs) {
    if (r.path.rfind("/cdn/", 0) == 0) continue;  // the LFS download
    EXPECT_EQ(r.path.rfind("/sentence-transformers/tiny/resolve/main/", 0), 0u) << r.path;
  }
  // Offline, from what that download cached.
  EXPECT_EQ(resolve_model_info("tiny", options(/*offline=*/true)).dir, m.dir);

  hubtest::reset(*server_);
  const ResolvedModel g = resolve_model_info("gpt2", options());
  EXPECT_EQ(g.repo_id, "gpt2");
  EXPECT_EQ(g.dir.parent_path().parent_path().filename(), "models--gpt2");
  for (const auto& r : hubtest::requests(*server_)) {
    if (r.path.rfind("/cdn/", 0) == 0) continue;
    EXPECT_EQ(r.path.rfind("/gpt2/resolve/main/", 0), 0u) << r.path;
  }
}

// A folder imported under a name the Hub does not know (404 RepoNotFound) loads online too: the
// snapshot stands in for the repository, and optional files it lacks are skipped.
TEST_F(ResolveTest, AnImportUnderANameTheHubDoesNotKnowLoadsOnline) {
  ImportOptions io;
  io.cache_dir = cache_.path();
  const ImportResult imp = import_model_folder(kTinyDir, "me/private-tiny", io);
  const ResolvedModel m = resolve_model_info("me/private-tiny", options());
  EXPECT_EQ(m.dir, imp.snapshot);
  EXPECT_GT(hubtest::count(hubtest::requests(*server_), "HEAD"), 0);
  // Nothing cached for a revision: the Hub's answer is the error.
  ResolveOptions v2 = options();
  v2.revision = "v2";
  const std::string msg = error_of<HubError>([&] { resolve_model_info("me/private-tiny", v2); });
  EXPECT_NE(msg.find("repository not found or not accessible"), std::string::npos) << msg;
}

TEST_F(ResolveTest, AnUnreachableHubIsAskedOnceNotPerFile) {
  HubConfig c;
  c.endpoint = "http://127.0.0.1:1";
  c.cache_dir = cache_.path();
  HttpOptions h;
  h.retries = 1;
  h.backoff_ms = 1;
  HubRepo repo(c, "org/tiny", "main", h, ProgressMode::kNever);
  FileResult first = repo.file("config.json");
  EXPECT_EQ(first.status, FileResult::Status::kNotCached);
  EXPECT_NE(first.reason.find("cannot reach"), std::string::npos) << first.reason;
  EXPECT_EQ(repo.requests(), 2);  // one attempt and one retry
  FileResult second = repo.file("tokenizer.json");
  EXPECT_EQ(second.status, FileResult::Status::kNotCached);
  EXPECT_EQ(second.reason, first.reason);
  EXPECT_EQ(repo.requests(), 2);
}

TEST(ResolveSpec, DirectoriesAndRepoIds) {
  TempDir tmp;
  write_file(tmp.path() / "config.json", "{}");
  ResolvedModel m = resolve_model_info(tmp.path().string());
  EXPECT_TRUE(m.local_dir);
  EXPECT_EQ(m.dir, tmp.path());
  EXPECT_EQ(m.files, std::vector<std::string>{"config.json"});
  EXPECT_TRUE(is_repo_id("BridgeTower/bridgetower-large-itm-mlm-itc"));
  EXPECT_TRUE(is_repo_id("gpt2"));
  EXPECT_FALSE(is_repo_id("a/b/c"));
  EXPECT_FALSE(is_repo_id("../x"));
  EXPECT_FALSE(is_repo_id("org/--x"));
  std::string msg = error_of<InvalidArgument>([] { resolve_model_info("./no/such/dir"); });
  EXPECT_NE(msg.find("no such directory"), std::string::npos) << msg;
  msg = error_of<InvalidArgument>(
      [&] { resolve_model_info((tmp.path() / "config.json").string()); });
  EXPECT_NE(msg.find("is a file"), std::string::npos) << msg;
}

}  // namespace
}  // namespace mmembed::hub
