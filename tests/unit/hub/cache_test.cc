// SHA-256 against FIPS 180-4 vectors; cache naming, URLs and environment handling against the
// rules of huggingface_hub 0.36 (constants.py, file_download.py; spec section F).
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <sys/stat.h>

#include <map>

#include "hub/cache.h"
#include "hub/progress.h"
#include "core/log.h"
#include "hub/sha256.h"
#include "hub_test_util.h"
#include "limited_child.h"
#include "mmembed/error.h"

namespace mmembed::hub {
namespace {

using hubtest::TempDir;

TEST(Sha256, FipsVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  Sha256 h;
  std::string chunk(1000, 'a');
  for (int i = 0; i < 1000; ++i) h.update(chunk);  // one million 'a'
  EXPECT_EQ(h.hex_digest(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, SplitUpdatesEqualOneShot) {
  std::string data = hubtest::random_bytes(1000, 7);
  for (std::size_t cut : {0u, 1u, 55u, 56u, 63u, 64u, 65u, 999u}) {
    Sha256 h;
    h.update(data.substr(0, cut));
    h.update(data.substr(cut));
    EXPECT_EQ(h.hex_digest(), sha256_hex(data)) << cut;
  }
}

TEST(HubNames, NormalizeEtagAsHuggingfaceHub) {
  EXPECT_EQ(normalize_etag("\"a16a55fda99d2f2e7b69cce5cf93ff4ad3049930\""),
            "a16a55fda99d2f2e7b69cce5cf93ff4ad3049930");
  EXPECT_EQ(normalize_etag("W/\"a16a55fda99d2f2e7b69cce5cf93ff4ad3049930\""),
            "a16a55fda99d2f2e7b69cce5cf93ff4ad3049930");
  EXPECT_EQ(normalize_etag("abc"), "abc");
}

TEST(HubNames, RepoFolderAndUrls) {
  EXPECT_EQ(repo_folder_name("openai/clip-vit-base-patch32"), "models--openai--clip-vit-base-patch32");
  EXPECT_EQ(repo_folder_name("gpt2"), "models--gpt2");
  EXPECT_EQ(repo_folder_name("org/set", "dataset"), "datasets--org--set");
  EXPECT_EQ(resolve_url("https://huggingface.co", "org/m", "main", "config.json"),
            "https://huggingface.co/org/m/resolve/main/config.json");
  // revision quoted with no safe characters, file name keeping "/"
  EXPECT_EQ(resolve_url("http://h", "org/m", "refs/pr/1", "1_Pooling/config file.json"),
            "http://h/org/m/resolve/refs%2Fpr%2F1/1_Pooling/config%20file.json");
  EXPECT_TRUE(is_commit_hash("1a5fe6c394df20de001cccaee4c006e3f7669769"));
  EXPECT_FALSE(is_commit_hash("main"));
  EXPECT_FALSE(is_commit_hash("1A5FE6C394DF20DE001CCCAEE4C006E3F7669769"));
}

TEST(HubNames, RejectsEscapingFileNames) {
  for (const char* bad : {"../x", "/etc/passwd", "a/../b", "a//b", "a\\b", ""}) {
    EXPECT_THROW(check_repo_filename(bad), InvalidArgument) << bad;
  }
  EXPECT_NO_THROW(check_repo_filename("1_Pooling/config.json"));
}

struct FakeEnv {
  std::map<std::string, std::string> vars;
  EnvFn fn() const {
    return [this](const char* name) -> const char* {
      auto it = vars.find(name);
      return it == vars.end() ? nullptr : it->second.c_str();
    };
  }
};

TEST(HubConfig, DefaultsFollowHomeAndXdg) {
  FakeEnv env{{{"HOME", "/home/u"}}};
  HubConfig c = read_hub_config(env.fn());
  EXPECT_EQ(c.endpoint, "https://huggingface.co");
  EXPECT_EQ(c.hf_home, "/home/u/.cache/huggingface");
  EXPECT_EQ(c.cache_dir, "/home/u/.cache/huggingface/hub");
  EXPECT_FALSE(c.offline);
  EXPECT_FALSE(c.token);
  EXPECT_EQ(c.etag_timeout_s, 10);

  env.vars["XDG_CACHE_HOME"] = "/xdg";
  EXPECT_EQ(read_hub_config(env.fn()).cache_dir, "/xdg/huggingface/hub");
  env.vars["HF_HOME"] = "$HOME/hf";
  EXPECT_EQ(read_hub_config(env.fn()).cache_dir, "/home/u/hf/hub");
  env.vars["HUGGINGFACE_HUB_CACHE"] = "/legacy";
  EXPECT_EQ(read_hub_config(env.fn()).cache_dir, "/legacy");
  env.vars["HF_HUB_CACHE"] = "~/new";
  EXPECT_EQ(read_hub_config(env.fn()).cache_dir, "/home/u/new");
}

TEST(HubConfig, EndpointOfflineAndTimeouts) {
  FakeEnv env{{{"HOME", "/h"}, {"HF_ENDPOINT", "http://mirror.local/"},
               {"TRANSFORMERS_OFFLINE", "1"}, {"HF_HUB_ETAG_TIMEOUT", "2.5"}}};
  HubConfig c = read_hub_config(env.fn());
  EXPECT_EQ(c.endpoint, "http://mirror.local");
  EXPECT_TRUE(c.offline);
  EXPECT_EQ(c.etag_timeout_s, 2.5);
  for (const char* v : {"1", "ON", "yes", "True"}) {
    env.vars["HF_HUB_OFFLINE"] = v;
    EXPECT_TRUE(read_hub_config(env.fn()).offline) << v;
  }
  env.vars["HF_HUB_OFFLINE"] = "0";
  EXPECT_FALSE(read_hub_config(env.fn()).offline);
}

TEST(HubConfig, TokenFromEnvironmentThenFile) {
  TempDir tmp;
  FakeEnv env{{{"HOME", "/h"}, {"HF_HOME", tmp.path().string()}}};
  EXPECT_FALSE(read_hub_config(env.fn()).token);
  hubtest::write_file(tmp.path() / "token", "  hf_file\n");
  EXPECT_EQ(read_hub_config(env.fn()).token.value_or(""), "hf_file");
  env.vars["HUGGING_FACE_HUB_TOKEN"] = "hf_legacy";
  EXPECT_EQ(read_hub_config(env.fn()).token.value_or(""), "hf_legacy");
  env.vars["HF_TOKEN"] = " hf_env \n";
  EXPECT_EQ(read_hub_config(env.fn()).token.value_or(""), "hf_env");
  env.vars["HF_HUB_DISABLE_IMPLICIT_TOKEN"] = "1";
  EXPECT_FALSE(read_hub_config(env.fn()).token);
}

// Issue #18: a token file that is there but not a regular file is an error naming it, as in
// huggingface_hub, where only a missing file means "no token" (it blocks reading a FIFO). Run
// in a child under an alarm, so that a regression that opens the FIFO fails instead of hanging.
TEST(HubConfig, SpecialTokenFileIsAnErrorNamingIt) {
  using testing_support::error_in_limited_child;
  TempDir tmp;
  FakeEnv env{{{"HOME", "/h"}, {"HF_HOME", tmp.path().string()}}};
  ASSERT_EQ(::mkfifo((tmp.path() / "token").c_str(), 0600), 0);
  std::string what = error_in_limited_child([&] { read_hub_config(env.fn()); });
  EXPECT_NE(what.find("token: is a FIFO, expected a regular file"), std::string::npos) << what;
  fs::create_directories(tmp.path() / "folder");
  env.vars["HF_TOKEN_PATH"] = (tmp.path() / "folder").string();
  what = error_in_limited_child([&] { read_hub_config(env.fn()); });
  EXPECT_NE(what.find("folder: is a directory, expected a regular file"), std::string::npos)
      << what;
  fs::create_symlink(tmp.path() / "nothing", tmp.path() / "dangling");
  env.vars["HF_TOKEN_PATH"] = (tmp.path() / "dangling").string();  // missing: no token
  EXPECT_FALSE(read_hub_config(env.fn()).token);
  env.vars["HF_TOKEN"] = "hf_env";  // the file is not read when the environment has a token
  EXPECT_EQ(read_hub_config(env.fn()).token.value_or(""), "hf_env");
}

// A FIFO as refs/<revision> is an error naming it (it used to read as "no ref", and write_ref
// then blocked opening it to write the commit); a FIFO as a .no_exist marker is left alone.
TEST(RepoCache, SpecialRefFileIsAnErrorNamingIt) {
  using testing_support::error_in_limited_child;
  TempDir tmp;
  RepoCache cache(tmp.path(), "org/name");
  const std::string commit = "0123456789abcdef0123456789abcdef01234567";
  fs::create_directories(cache.storage() / "refs");
  ASSERT_EQ(::mkfifo((cache.storage() / "refs" / "main").c_str(), 0600), 0);
  std::string what = error_in_limited_child([&] { cache.commit_for("main"); });
  EXPECT_NE(what.find("refs/main: is a FIFO, expected a regular file"), std::string::npos)
      << what;
  what = error_in_limited_child([&] { cache.write_ref("main", commit); });
  EXPECT_NE(what.find("refs/main: is a FIFO, expected a regular file"), std::string::npos)
      << what;
  EXPECT_EQ(cache.commit_for(commit).value_or(""), commit);  // a hash needs no ref

  const fs::path marker = cache.no_exist_path(commit, "x.json");
  fs::create_directories(marker.parent_path());
  ASSERT_EQ(::mkfifo(marker.c_str(), 0600), 0);
  EXPECT_FALSE(cache.known_absent(commit, "x.json"));
  what = error_in_limited_child([&] { cache.mark_absent(commit, "x.json"); });
  EXPECT_EQ(what, "!no error");
  EXPECT_TRUE(fs::is_fifo(marker));
}

TEST(RepoCache, RefsAreWrittenWithoutNewlineAndLinksAreRelative) {
  TempDir tmp;
  RepoCache cache(tmp.path(), "org/name");
  const std::string commit = "0123456789abcdef0123456789abcdef01234567";
  cache.write_ref("main", commit);
  EXPECT_EQ(hubtest::read_file(cache.storage() / "refs" / "main"), commit);
  EXPECT_EQ(cache.commit_for("main").value_or(""), commit);
  EXPECT_EQ(cache.commit_for(commit).value_or(""), commit);
  cache.write_ref("refs/pr/1", commit);  // nested folders, as Python
  EXPECT_EQ(hubtest::read_file(cache.storage() / "refs" / "refs" / "pr" / "1"), commit);

  hubtest::write_file(cache.blob_path("e1"), "content");
  cache.link(commit, "sub/dir/f.txt", "e1", /*copy=*/false);
  fs::path p = cache.pointer_path(commit, "sub/dir/f.txt");
  ASSERT_TRUE(fs::is_symlink(p));
  EXPECT_EQ(fs::read_symlink(p), fs::path("../../../../blobs/e1"));
  EXPECT_EQ(hubtest::read_file(p), "content");
  cache.link(commit, "copy.txt", "e1", /*copy=*/true);
  EXPECT_FALSE(fs::is_symlink(cache.pointer_path(commit, "copy.txt")));
  EXPECT_EQ(hubtest::read_file(cache.pointer_path(commit, "copy.txt")), "content");

  EXPECT_FALSE(cache.known_absent(commit, "x.json"));
  cache.mark_absent(commit, "x.json");
  EXPECT_TRUE(cache.known_absent(commit, "x.json"));
  EXPECT_EQ(cache.lock_path("e1"), tmp.path() / ".locks" / "models--org--name" / "e1.lock");
}

}  // namespace
}  // namespace mmembed::hub

namespace mmembed::hub {
namespace {

TEST(Progress, FormatsBytesDurationsAndTheLine) {
  EXPECT_EQ(format_bytes(830), "830 B");
  EXPECT_EQ(format_bytes(1500), "1.50 kB");
  EXPECT_EQ(format_bytes(12.3e6), "12.3 MB");
  EXPECT_EQ(format_bytes(456e9), "456 GB");
  EXPECT_EQ(format_duration(0), "00:00");
  EXPECT_EQ(format_duration(125), "02:05");
  EXPECT_EQ(format_duration(3723), "1:02:03");
  ProgressBar items("fetch", 10, ProgressBar::Unit::kCount, ProgressDisplay::kOff, "images");
  items.add_done(3);
  items.add_done(1, 1);
  std::string line = items.render();
  // Item work: items and items per second, no bytes while none moved.
  EXPECT_EQ(line.rfind("fetch: 4/10 images 40% (1 failed), ", 0), 0u) << line;
  EXPECT_NE(line.find(" images/s, ETA "), std::string::npos) << line;
  EXPECT_EQ(line.find(" B"), std::string::npos) << line;
  items.add_bytes(2000);
  line = items.render();
  EXPECT_NE(line.find(" images/s, 2.00 kB, "), std::string::npos) << line;
  // A stage without a count shows its time; a counted stage restarts the count.
  items.set_stage("umap knn", 0, "items");
  EXPECT_EQ(items.render(), "umap knn: 00:00");
  items.set_stage("umap", 500, "epochs");
  items.set_done(125);
  line = items.render();
  EXPECT_EQ(line.rfind("umap: 125/500 epochs 25%, ", 0), 0u) << line;
  EXPECT_NE(line.find(" epochs/s, ETA "), std::string::npos) << line;
  ProgressBar bytes("model.safetensors", 1000, ProgressBar::Unit::kBytes, false);
  bytes.set_bytes(250);
  line = bytes.render();
  EXPECT_EQ(line.rfind("model.safetensors: 250 B / 1.00 kB 25%", 0), 0u) << line;
  EXPECT_NE(line.find("ETA"), std::string::npos) << line;
  EXPECT_FALSE(progress_enabled(ProgressMode::kNever));
  EXPECT_TRUE(progress_enabled(ProgressMode::kAlways));
  EXPECT_EQ(progress_display(ProgressMode::kAlways), ProgressDisplay::kBar);
  EXPECT_EQ(progress_display(ProgressMode::kNever), ProgressDisplay::kOff);
  // Not a terminal (ctest's pipes): plain lines; --quiet: nothing.
  if (::isatty(STDERR_FILENO) != 1 && std::getenv("MMEMBED_PROGRESS") == nullptr) {
    EXPECT_EQ(progress_display(ProgressMode::kAuto), ProgressDisplay::kLines);
  }
  core::set_log_level(core::LogLevel::kQuiet);
  EXPECT_EQ(progress_display(ProgressMode::kAlways), ProgressDisplay::kOff);
  core::set_log_level(core::LogLevel::kNormal);
}

}  // namespace
}  // namespace mmembed::hub
