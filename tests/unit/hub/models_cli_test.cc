// `mmembed models import` / `models list` end to end: an imported folder loads by its repo id and
// by its short name and embeds as the folder itself does; huggingface_hub (scan_cache_dir,
// snapshot_download and hf_hub_download, offline) reads what was imported and agrees with
// `models list --json`; scripts/real_models/fetch.py's own writer lays out the same cache.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "hub_test_util.h"

namespace {

namespace fs = std::filesystem;
using hubtest::read_file;
using hubtest::TempDir;
using hubtest::write_file;

const std::string kData = MMEMBED_TEST_DATA_DIR;
const std::string kTinySt = kData + "/models/minilm-tiny-st";

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

struct CliResult {
  int rc;
  std::string out, err;
};

// `env ENV... command`, stdout and stderr captured.
CliResult run(const std::string& command, const fs::path& dir, const std::string& env = "") {
  const fs::path out = dir / "stdout.txt", err = dir / "stderr.txt";
  const std::string cmd = (env.empty() ? "" : "env " + env + " ") + command + " > " +
                          quote(out.string()) + " 2> " + quote(err.string());
  const int status = std::system(cmd.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, read_file(out), read_file(err)};
}

std::string mmembed(const std::string& args) { return quote(MMEMBED_CLI) + " " + args; }

// A listing of a cache folder: every path, with link targets and file sizes.
std::string layout(const fs::path& cache) {
  std::vector<std::string> lines;
  for (auto it = fs::recursive_directory_iterator(cache); it != fs::recursive_directory_iterator(); ++it) {
    const std::string rel = it->path().lexically_relative(cache).generic_string();
    if (rel.rfind(".locks", 0) == 0) continue;
    std::string line = rel;
    if (it->is_symlink()) line += " -> " + fs::read_symlink(it->path()).string();
    else if (it->is_regular_file()) line += " " + std::to_string(it->file_size());
    lines.push_back(line);
  }
  std::sort(lines.begin(), lines.end());
  std::string s;
  for (const auto& l : lines) s += l + "\n";
  return s;
}

// A Python that has huggingface_hub: $MMEMBED_HF_PYTHON, the repository's .venv-ref, or the one
// scripts/test.sh installs; empty when none.
std::string hf_python() {
  std::vector<std::string> candidates;
  if (const char* p = std::getenv("MMEMBED_HF_PYTHON"); p && *p) candidates.push_back(p);
  candidates.push_back(std::string(MMEMBED_SOURCE_DIR) + "/.venv-ref/bin/python");
  if (const char* home = std::getenv("HOME"))
    candidates.push_back(std::string(home) + "/.cache/mmembed/huggingface_hub-0.36.2/python");
  for (const auto& p : candidates) {
    if (fs::exists(p) &&
        std::system((quote(p) + " -c 'import huggingface_hub' > /dev/null 2>&1").c_str()) == 0)
      return p;
  }
  return "";
}

TEST(ModelsCli, AnImportLoadsByRepoIdAndShortName) {
  TempDir t;
  const fs::path cache = t.path() / "cache";
  CliResult r = run(mmembed("models import " + quote(kTinySt) +
                      " --as sentence-transformers/minilm-tiny-st --cache-dir " + quote(cache.string())),
              t.path());
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("sentence-transformers/minilm-tiny-st (revision main) -> " + cache.string() +
                       "/models--sentence-transformers--minilm-tiny-st/snapshots/"),
            std::string::npos) << r.out;
  EXPECT_NE(r.out.find("new snapshot"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("12 files"), std::string::npos) << r.out;

  const std::string texts = " --text 'a cat' --text 'Zwei Hunde spielen im Schnee.'";
  const CliResult direct = run(mmembed("embed --model " + quote(kTinySt) + texts), t.path());
  ASSERT_EQ(direct.rc, 0) << direct.err;
  const std::string env = "HF_HUB_CACHE=" + quote(cache.string()) + " HF_HUB_OFFLINE=1";
  for (const char* name : {"minilm-tiny-st", "sentence-transformers/minilm-tiny-st"}) {
    const CliResult cached = run(mmembed(std::string("embed --model ") + name + texts), t.path(), env);
    ASSERT_EQ(cached.rc, 0) << name << ": " << cached.err;
    EXPECT_EQ(cached.out, direct.out) << name;
  }
  // The run.json of a batch job names the repository the short name stood for.
  write_file(t.path() / "texts.jsonl", "{\"id\": \"a\", \"text\": \"a cat\"}\n");
  const CliResult job = run(mmembed("embed --model minilm-tiny-st --input " +
                              quote((t.path() / "texts.jsonl").string()) + " --kind text -o " +
                              quote((t.path() / "job").string())),
                      t.path(), env);
  ASSERT_EQ(job.rc, 0) << job.err;
  const auto meta = nlohmann::json::parse(read_file(t.path() / "job" / "run.json"));
  EXPECT_EQ(meta["model"], "sentence-transformers/minilm-tiny-st");
  EXPECT_EQ(meta["revision"].get<std::string>().size(), 40u);
}

TEST(ModelsCli, ImportJsonRefusalsAndForce) {
  TempDir t;
  const std::string cache = quote((t.path() / "cache").string());
  CliResult r = run(mmembed("models import " + quote(kTinySt) + " --as org/m --json --cache-dir " + cache),
              t.path());
  ASSERT_EQ(r.rc, 0) << r.err;
  const auto first = nlohmann::json::parse(r.out);
  EXPECT_EQ(first["repo_id"], "org/m");
  EXPECT_EQ(first["revision"], "main");
  EXPECT_EQ(first["created"], true);
  EXPECT_EQ(first["files"].size(), std::size_t{12});
  EXPECT_TRUE(first["previous_commit"].is_null());

  r = run(mmembed("models import " + quote(kTinySt) + " --as org/m --json --cache-dir " + cache),
          t.path());
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["created"], false);

  const std::string other = quote(kData + "/models/clip-tiny-gelu");
  r = run(mmembed("models import " + other + " --as org/m --cache-dir " + cache), t.path());
  EXPECT_EQ(r.rc, 1);
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_NE(r.err.find("mmembed: error: org/m (revision main): refs/main in "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("names another snapshot (" + first["commit"].get<std::string>() + ")"),
            std::string::npos) << r.err;

  r = run(mmembed("models import " + other + " --as org/m --force --cache-dir " + cache), t.path());
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("refs/main moved from " + first["commit"].get<std::string>()),
            std::string::npos) << r.out;

  r = run(mmembed("models list --cache-dir " + cache + " --revisions"), t.path());
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find(first["commit"].get<std::string>()), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Scanned 1 repo(s)"), std::string::npos) << r.out;

  r = run(mmembed("models import " + quote(kTinySt) + " --cache-dir " + cache), t.path());
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("--as is required"), std::string::npos) << r.err;
}

// scripts/real_models/fetch.py writes the cache without the binary when it has none: the same
// layout, byte for byte and link for link, as `models import`.
TEST(ModelsCli, FetchPyWritesWhatModelsImportWrites) {
  if (std::system("python3 -c 'import hashlib' > /dev/null 2>&1") != 0)
    GTEST_SKIP() << "no python3 to run scripts/real_models/fetch.py";
  TempDir t;
  const fs::path folder = t.path() / "model";
  fs::copy(kTinySt, folder, fs::copy_options::recursive);
  write_file(folder / "sub" / "deeper" / "data.dat", std::string("bin\0ary", 7));
  write_file(folder / "sub" / "notes.txt", "text\n");
  write_file(folder / "empty.txt", "");
  fs::create_symlink("sub/notes.txt", folder / "notes-link.txt");
  write_file(folder / ".git" / "HEAD", "x");
  const fs::path ours = t.path() / "ours", theirs = t.path() / "theirs";
  CliResult r = run(mmembed("models import " + quote(folder.string()) + " --as org/x --cache-dir " +
                      quote(ours.string())),
              t.path());
  ASSERT_EQ(r.rc, 0) << r.err;
  const std::string py =
      "import sys; sys.path.insert(0, sys.argv[1]); import fetch; from pathlib import Path; "
      "print(fetch.install_folder(Path(sys.argv[2]), 'org/x', Path(sys.argv[3]))['commit'])";
  r = run("python3 -c " + quote(py) + " " + quote(std::string(MMEMBED_SOURCE_DIR) + "/scripts/real_models") +
              " " + quote(folder.string()) + " " + quote(theirs.string()),
          t.path());
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(layout(theirs), layout(ours));
  EXPECT_NE(layout(ours).find("data.dat -> ../../../../blobs/"), std::string::npos) << layout(ours);
}

TEST(ModelsCli, HuggingfaceHubReadsImportsAndAgreesWithModelsList) {
  const std::string python = hf_python();
  if (python.empty())
    GTEST_SKIP() << "no Python with huggingface_hub (set MMEMBED_HF_PYTHON; scripts/test.sh "
                    "installs one)";
  TempDir t;
  const fs::path cache = t.path() / "cache";
  const std::string c = " --cache-dir " + quote(cache.string());
  const fs::path changed = t.path() / "changed";
  fs::copy(kTinySt, changed, fs::copy_options::recursive);
  write_file(changed / "config.json", "{\"changed\": true}\n");
  write_file(changed / "1_Pooling" / "extra" / "deep.bin", std::string("\0\1\2", 3));
  const std::vector<std::pair<std::string, std::string>> imports = {
      {"import " + quote(kTinySt) + " --as sentence-transformers/minilm-tiny-st", ""},
      {"import " + quote(changed.string()) + " --as sentence-transformers/minilm-tiny-st --revision dev", ""},
      {"import " + quote(kData + "/models/clip-tiny-gelu") + " --as openai/clip-tiny", ""},
      {"import " + quote(kData + "/models/clip-tiny-gelu") + " --as openai/clip-tiny --revision v1", ""},
      {"import " + quote(kData + "/models/clip-tiny-quickgelu") + " --as org/copied",
       "HF_HUB_DISABLE_SYMLINKS=1"},
  };
  for (const auto& [args, env] : imports) {
    const CliResult r = run(mmembed("models " + args + c), t.path(), env);
    ASSERT_EQ(r.rc, 0) << args << ": " << r.err;
  }
  const CliResult r = run(quote(python) + " " + quote(std::string(MMEMBED_SOURCE_DIR) + "/tests/support/check_hf_cache.py") +
                        " " + quote(MMEMBED_CLI) + " " + quote(cache.string()) +
                        " sentence-transformers/minilm-tiny-st=" + quote(kTinySt) +
                        " sentence-transformers/minilm-tiny-st=" + quote(changed.string()) + "@dev" +
                        " openai/clip-tiny=" + quote(kData + "/models/clip-tiny-gelu") + "@v1" +
                        " org/copied=" + quote(kData + "/models/clip-tiny-quickgelu"),
                    t.path());
  if (r.rc == 77) GTEST_SKIP() << r.out;
  EXPECT_EQ(r.rc, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("agrees with mmembed models list: 3 repos"), std::string::npos) << r.out;
  std::printf("%s", r.out.c_str());
}

}  // namespace
