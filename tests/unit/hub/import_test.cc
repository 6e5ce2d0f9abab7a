// `models import` and `models list` in the library (hub/import.h, hub/scan.h), and short model
// names (hub::sentence_transformers_repo_id): the layout written, the commit (a git tree id,
// checked against git itself when it is installed), idempotence, refusals (other snapshots,
// special files, links out of the folder), --force, atomicity after a failure, the cache scan
// against huggingface_hub's rules, and loading an import through resolve_model_info.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "hub/cache.h"
#include "hub/import.h"
#include "hub/scan.h"
#include "hub/sha1.h"
#include "hub/sha256.h"
#include "hub_test_util.h"
#include "mmembed/hub.h"
#include "test_support.h"

namespace mmembed::hub {
namespace {

using hubtest::read_file;
using hubtest::TempDir;
using hubtest::write_file;
using mmembed::testing_support::error_of;

const fs::path kTinySt = fs::path(MMEMBED_TEST_DATA_DIR) / "models" / "minilm-tiny-st";
const fs::path kPyCache = fs::path(MMEMBED_TEST_DATA_DIR) / "hub" / "py_cache";

// A copy of a folder (files only, no links), so tests can change it.
fs::path copy_of(const fs::path& from, const fs::path& to) {
  fs::create_directories(to);
  fs::copy(from, to, fs::copy_options::recursive);
  return to;
}

// Every path below `dir` (relative, sorted), folders included.
std::vector<std::string> tree(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return out;
  for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator(); ++it)
    out.push_back(fs::relative(it->path(), dir).generic_string());
  std::sort(out.begin(), out.end());
  return out;
}

ImportOptions opts(const fs::path& cache, const std::string& revision = "main", bool force = false) {
  ImportOptions o;
  o.cache_dir = cache;
  o.revision = revision;
  o.force = force;
  return o;
}

ResolveOptions offline(const fs::path& cache) {
  ResolveOptions o;
  o.cache_dir = cache.string();
  o.offline = true;
  o.progress = Progress::kNever;
  return o;
}

bool have_git() { return std::system("git --version > /dev/null 2>&1") == 0; }

// ---------------------------------------------------------------------------- short names

TEST(ShortNames, FollowSentenceTransformers) {
  EXPECT_EQ(sentence_transformers_repo_id("all-MiniLM-L6-v2"),
            "sentence-transformers/all-MiniLM-L6-v2");
  EXPECT_EQ(sentence_transformers_repo_id("all-mpnet-base-v2"),
            "sentence-transformers/all-mpnet-base-v2");
  // The original transformers checkpoints keep their name, matched without regard to case.
  for (const char* name : {"bert-base-uncased", "gpt2", "t5-small", "xlm-roberta-large",
                           "distilbert-base-uncased-finetuned-sst-2-english", "ctrl",
                           "BERT-Base-Uncased", "GPT2", "xlnet-large-cased",
                           "albert-base-v1", "roberta-large-openai-detector"})
    EXPECT_EQ(sentence_transformers_repo_id(name), name) << name;
  // Names close to them are not in the list.
  EXPECT_EQ(sentence_transformers_repo_id("gpt2-small"), "sentence-transformers/gpt2-small");
  EXPECT_EQ(sentence_transformers_repo_id("bert-base"), "sentence-transformers/bert-base");
  // A name with an organization is never changed.
  EXPECT_EQ(sentence_transformers_repo_id("org/name"), "org/name");
  EXPECT_EQ(sentence_transformers_repo_id("sentence-transformers/x"), "sentence-transformers/x");
  EXPECT_EQ(sentence_transformers_repo_id(""), "");
}

TEST(ShortNames, ResolveThroughTheCacheAndSayWhichRepository) {
  TempDir cache;
  const ImportResult imp =
      import_model_folder(kTinySt, "sentence-transformers/minilm-tiny-st", opts(cache.path()));
  const ResolvedModel m = resolve_model_info("minilm-tiny-st", offline(cache.path()));
  EXPECT_EQ(m.spec, "minilm-tiny-st");
  EXPECT_EQ(m.repo_id, "sentence-transformers/minilm-tiny-st");
  EXPECT_EQ(m.commit, imp.commit);
  EXPECT_EQ(m.dir, imp.snapshot);
  EXPECT_FALSE(m.local_dir);
  const ResolvedModel full =
      resolve_model_info("sentence-transformers/minilm-tiny-st", offline(cache.path()));
  EXPECT_EQ(full.spec, full.repo_id);
  EXPECT_EQ(full.dir, m.dir);
  // Not cached: the message names the repository looked up and the short name.
  const std::string msg =
      error_of<HubError>([&] { resolve_model_info("no-such-model", offline(cache.path())); });
  EXPECT_NE(msg.find("sentence-transformers/no-such-model (short name 'no-such-model', revision main) is not available"),
            std::string::npos) << msg;
  EXPECT_NE(msg.find("models--sentence-transformers--no-such-model"), std::string::npos) << msg;
}

TEST(ShortNames, AnOriginalCheckpointNameStaysUnprefixed) {
  TempDir cache;
  const std::string msg =
      error_of<HubError>([&] { resolve_model_info("bert-base-uncased", offline(cache.path())); });
  EXPECT_NE(msg.find("model bert-base-uncased (revision main)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("models--bert-base-uncased"), std::string::npos) << msg;
  import_model_folder(kTinySt, "bert-base-uncased", opts(cache.path()));
  EXPECT_EQ(resolve_model_info("bert-base-uncased", offline(cache.path())).repo_id,
            "bert-base-uncased");
}

TEST(ShortNames, ALocalFolderOfThatNameWins) {
  TempDir tmp;
  write_file(tmp.path() / "all-MiniLM-L6-v2" / "config.json", "{}");
  const fs::path cwd = fs::current_path();
  fs::current_path(tmp.path());
  ResolvedModel m;
  try {
    m = resolve_model_info("all-MiniLM-L6-v2", offline(tmp.path() / "cache"));
  } catch (...) {
    fs::current_path(cwd);
    throw;
  }
  fs::current_path(cwd);
  EXPECT_TRUE(m.local_dir);
  EXPECT_EQ(m.repo_id, "");
  EXPECT_EQ(m.dir.filename(), "all-MiniLM-L6-v2");
}

// ---------------------------------------------------------------------------- hashes

TEST(GitIds, KnownVectors) {
  EXPECT_EQ(sha1_hex(""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  EXPECT_EQ(sha1_hex("abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
  EXPECT_EQ(sha1_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
  Sha1 million;
  const std::string a(1000, 'a');
  for (int i = 0; i < 1000; ++i) million.update(a);
  EXPECT_EQ(million.hex_digest(), "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
  // `git hash-object` of an empty file and of "hello\n"; git's empty tree.
  EXPECT_EQ(git_blob_id(""), "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
  EXPECT_EQ(git_blob_id("hello\n"), "ce013625030ba8dba906f756967f9e9ca394464a");
  EXPECT_EQ(git_tree_id({}), "4b825dc642cb6eb9a060e54bf8d69288fbee4904");
}

TEST(GitIds, LfsRule) {
  EXPECT_TRUE(is_lfs_file("model.safetensors", 10, "{}"));
  EXPECT_TRUE(is_lfs_file("pytorch_model.bin", 10, "x"));
  EXPECT_TRUE(is_lfs_file("sub/weights.onnx", 10, "x"));
  EXPECT_TRUE(is_lfs_file("model.bin.1", 10, "x"));
  EXPECT_TRUE(is_lfs_file("data.tar.gz", 10, "x"));
  EXPECT_TRUE(is_lfs_file("runs/events.out.tfevents.123", 10, "x"));
  EXPECT_TRUE(is_lfs_file("saved_model/variables/x.index", 10, "x"));
  EXPECT_TRUE(is_lfs_file("big.json", 10 << 20, "{}"));
  EXPECT_TRUE(is_lfs_file("binary.dat", 3, std::string("a\0b", 3)));
  EXPECT_FALSE(is_lfs_file("config.json", 612, "{\"a\": 1}"));
  EXPECT_FALSE(is_lfs_file("tokenizer.json", (10 << 20) - 1, "{"));
  EXPECT_FALSE(is_lfs_file("vocab.txt", 100, "[PAD]\n"));
  EXPECT_FALSE(is_lfs_file("README.md", 100, "# x"));
  EXPECT_FALSE(is_lfs_file("notes.binary", 10, "x"));
  EXPECT_FALSE(is_lfs_file("bin", 10, "x"));
}

// ---------------------------------------------------------------------------- import

TEST(Import, WritesTheHuggingFaceLayout) {
  TempDir cache;
  const ImportResult r = import_model_folder(kTinySt, "org/tiny-st", opts(cache.path()));
  const fs::path repo = cache.path() / "models--org--tiny-st";
  EXPECT_EQ(r.repo_path, repo);
  EXPECT_EQ(r.snapshot, repo / "snapshots" / r.commit);
  EXPECT_TRUE(is_commit_hash(r.commit)) << r.commit;
  EXPECT_TRUE(r.created);
  EXPECT_TRUE(r.ref_changed);
  EXPECT_EQ(read_file(repo / "refs" / "main"), r.commit);  // no newline

  std::set<std::string> paths;
  std::uint64_t bytes = 0;
  for (const ImportedFile& f : r.files) {
    paths.insert(f.path);
    bytes += f.size;
    const std::string content = read_file(kTinySt / f.path);
    EXPECT_EQ(f.size, content.size());
    EXPECT_EQ(f.blob, f.lfs ? sha256_hex(content) : git_blob_id(content)) << f.path;
    EXPECT_TRUE(f.new_blob);
    const fs::path link = r.snapshot / f.path;
    ASSERT_TRUE(fs::is_symlink(link)) << link;
    std::string want = "../../";
    for (char c : f.path) want += c == '/' ? "../" : "";
    EXPECT_EQ(fs::read_symlink(link).string(), want + "blobs/" + f.blob) << f.path;
    EXPECT_EQ(read_file(link), content) << f.path;
    EXPECT_EQ(read_file(repo / "blobs" / f.blob), content) << f.path;
  }
  EXPECT_EQ(bytes, r.bytes);
  EXPECT_EQ(paths, (std::set<std::string>{
                       "1_Pooling/config.json", "README.md", "config.json",
                       "config_sentence_transformers.json", "model.safetensors", "modules.json",
                       "pytorch_model.bin", "sentence_bert_config.json", "special_tokens_map.json",
                       "tokenizer.json", "tokenizer_config.json", "vocab.txt"}));
  for (const ImportedFile& f : r.files) {
    const bool weights = f.path == "model.safetensors" || f.path == "pytorch_model.bin";
    EXPECT_EQ(f.lfs, weights) << f.path;
  }
  // Nothing else: no temporary folders, the lock under .locks.
  EXPECT_EQ(tree(repo).size(), tree(repo / "blobs").size() + tree(repo / "snapshots").size() +
                                   tree(repo / "refs").size() + 3);
  EXPECT_TRUE(fs::exists(cache.path() / ".locks" / "models--org--tiny-st" / "mmembed-import.lock"));

  // And --model org/tiny-st loads it offline.
  const ResolvedModel m = resolve_model_info("org/tiny-st", offline(cache.path()));
  EXPECT_EQ(m.dir, r.snapshot);
  EXPECT_EQ(m.commit, r.commit);
  EXPECT_NE(std::find(m.files.begin(), m.files.end(), "1_Pooling/config.json"), m.files.end());
  EXPECT_NE(std::find(m.files.begin(), m.files.end(), "model.safetensors"), m.files.end());
}

TEST(Import, TheCommitIsTheGitTreeIdAndDependsOnContentOnly) {
  TempDir tmp;
  const fs::path a = copy_of(kTinySt, tmp.path() / "a");
  const ImportResult r1 = import_model_folder(a, "org/x", opts(tmp.path() / "c1"));
  // Another folder with the same files, another revision: the same snapshot name.
  const fs::path b = copy_of(kTinySt, tmp.path() / "b");
  const ImportResult r2 = import_model_folder(b, "org/y", opts(tmp.path() / "c2", "v1.0"));
  EXPECT_EQ(r1.commit, r2.commit);
  // One byte more anywhere: another one.
  write_file(b / "1_Pooling" / "config.json", read_file(b / "1_Pooling" / "config.json") + " ");
  EXPECT_NE(import_model_folder(b, "org/y", opts(tmp.path() / "c3")).commit, r1.commit);

  if (!have_git()) GTEST_SKIP() << "git is not installed: the commit was not checked against it";
  const std::string cmd = "cd '" + a.string() +
                          "' && git init -q . && git add -A && git write-tree > '" +
                          (tmp.path() / "tree.txt").string() + "' 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::string git_tree = read_file(tmp.path() / "tree.txt");
  while (!git_tree.empty() && git_tree.back() == '\n') git_tree.pop_back();
  EXPECT_EQ(git_tree, r1.commit);
  // The folder now has .git/, which import leaves out: still the same commit.
  EXPECT_EQ(import_model_folder(a, "org/x", opts(tmp.path() / "c1")).commit, r1.commit);
}

TEST(Import, AgainChangesNothing) {
  TempDir cache;
  const ImportResult first = import_model_folder(kTinySt, "org/tiny-st", opts(cache.path()));
  const auto before = tree(cache.path());
  const auto mtime = fs::last_write_time(first.snapshot);
  const ImportResult again = import_model_folder(kTinySt, "org/tiny-st", opts(cache.path()));
  EXPECT_EQ(again.commit, first.commit);
  EXPECT_FALSE(again.created);
  EXPECT_FALSE(again.ref_changed);
  EXPECT_TRUE(again.previous_commit.empty());
  for (const auto& f : again.files) EXPECT_FALSE(f.new_blob) << f.path;
  EXPECT_EQ(tree(cache.path()), before);
  EXPECT_EQ(fs::last_write_time(first.snapshot), mtime);
  // Under another revision: the same snapshot, one more ref.
  const ImportResult tagged = import_model_folder(kTinySt, "org/tiny-st", opts(cache.path(), "v1"));
  EXPECT_FALSE(tagged.created);
  EXPECT_TRUE(tagged.ref_changed);
  EXPECT_EQ(read_file(cache.path() / "models--org--tiny-st" / "refs" / "v1"), first.commit);
}

TEST(Import, RefusesToMoveARefToOtherFilesWithoutForce) {
  TempDir tmp;
  const fs::path cache = tmp.path() / "cache";
  const ImportResult old = import_model_folder(kTinySt, "org/m", opts(cache));
  const fs::path other = copy_of(kTinySt, tmp.path() / "other");
  write_file(other / "config.json", "{\"changed\": true}\n");
  const auto before = tree(cache);
  const std::string msg = error_of<InvalidArgument>(
      [&] { import_model_folder(other, "org/m", opts(cache)); });
  EXPECT_NE(msg.find("refs/main"), std::string::npos) << msg;
  EXPECT_NE(msg.find("names another snapshot (" + old.commit + ")"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--force"), std::string::npos) << msg;
  EXPECT_EQ(tree(cache), before);  // nothing written

  // Another revision is fine; --force moves main and keeps the old snapshot.
  EXPECT_TRUE(import_model_folder(other, "org/m", opts(cache, "dev")).created);
  const ImportResult forced = import_model_folder(other, "org/m", opts(cache, "main", true));
  EXPECT_EQ(forced.previous_commit, old.commit);
  EXPECT_TRUE(forced.ref_changed);
  EXPECT_FALSE(forced.created);  // made by the "dev" import
  EXPECT_EQ(read_file(cache / "models--org--m" / "refs" / "main"), forced.commit);
  EXPECT_TRUE(fs::is_directory(old.snapshot));
  EXPECT_EQ(resolve_model_info("org/m", offline(cache)).commit, forced.commit);
}

TEST(Import, ADamagedSnapshotIsRefusedThenReplacedWithForce) {
  TempDir cache;
  const ImportResult r = import_model_folder(kTinySt, "org/d", opts(cache.path()));
  fs::remove(r.snapshot / "vocab.txt");
  std::string msg = error_of<InvalidArgument>(
      [&] { import_model_folder(kTinySt, "org/d", opts(cache.path())); });
  EXPECT_NE(msg.find("exists with other content (vocab.txt is missing)"), std::string::npos) << msg;
  // A link replaced by a file with other bytes.
  fs::remove(r.snapshot / "config.json");
  write_file(r.snapshot / "config.json", "{}");
  write_file(r.snapshot / "extra.txt", "x");
  msg = error_of<InvalidArgument>([&] { import_model_folder(kTinySt, "org/d", opts(cache.path())); });
  EXPECT_NE(msg.find("exists with other content"), std::string::npos) << msg;

  const ImportResult fixed = import_model_folder(kTinySt, "org/d", opts(cache.path(), "main", true));
  EXPECT_TRUE(fixed.replaced);
  EXPECT_EQ(fixed.commit, r.commit);
  EXPECT_FALSE(fs::exists(r.snapshot / "extra.txt"));
  EXPECT_EQ(read_file(r.snapshot / "vocab.txt"), read_file(kTinySt / "vocab.txt"));
  EXPECT_TRUE(fs::is_symlink(r.snapshot / "config.json"));
  EXPECT_FALSE(import_model_folder(kTinySt, "org/d", opts(cache.path())).created);
  for (const auto& p : tree(cache.path() / "models--org--d"))
    EXPECT_EQ(p.find(".mmembed-import"), std::string::npos) << p;
}

TEST(Import, ADamagedBlobIsRefusedThenRewrittenWithForce) {
  TempDir cache;
  const ImportResult r = import_model_folder(kTinySt, "org/b", opts(cache.path()));
  std::string blob;
  for (const auto& f : r.files) {
    if (f.path == "vocab.txt") blob = f.blob;
  }
  const fs::path blob_path = cache.path() / "models--org--b" / "blobs" / blob;
  write_file(blob_path, "short");
  // The snapshot links to the damaged blob: the snapshot itself differs now.
  const std::string msg = error_of<InvalidArgument>(
      [&] { import_model_folder(kTinySt, "org/b", opts(cache.path())); });
  EXPECT_NE(msg.find("vocab.txt has 5 bytes"), std::string::npos) << msg;
  import_model_folder(kTinySt, "org/b", opts(cache.path(), "main", true));
  EXPECT_EQ(read_file(blob_path), read_file(kTinySt / "vocab.txt"));
}

TEST(Import, CopiesInsteadOfLinks) {
  TempDir cache;
  ImportOptions o = opts(cache.path());
  o.copy = true;
  const ImportResult r = import_model_folder(kTinySt, "org/c", o);
  for (const auto& f : r.files) {
    EXPECT_FALSE(fs::is_symlink(r.snapshot / f.path)) << f.path;
    EXPECT_EQ(read_file(r.snapshot / f.path), read_file(kTinySt / f.path)) << f.path;
  }
  // Copies of the same content count as the same snapshot.
  EXPECT_FALSE(import_model_folder(kTinySt, "org/c", opts(cache.path())).created);
}

TEST(Import, LinksInsideTheFolderAreFollowedOthersRefused) {
  TempDir tmp;
  const fs::path dir = copy_of(kTinySt, tmp.path() / "m");
  const fs::path cache = tmp.path() / "cache";
  fs::create_symlink("vocab.txt", dir / "vocab-link.txt");
  fs::create_symlink("../config.json", dir / "1_Pooling" / "up.json");
  const ImportResult r = import_model_folder(dir, "org/l", opts(cache));
  std::map<std::string, std::string> blob_of;
  for (const auto& f : r.files) blob_of[f.path] = f.blob;
  EXPECT_EQ(blob_of.at("vocab-link.txt"), blob_of.at("vocab.txt"));
  EXPECT_EQ(blob_of.at("1_Pooling/up.json"), blob_of.at("config.json"));

  struct Case {
    const char* name;
    std::function<void(const fs::path&)> make;
    const char* expect;
  };
  const fs::path outside = tmp.path() / "outside.txt";
  write_file(outside, "secret");
  const std::vector<Case> cases = {
      {"link out", [&](const fs::path& d) { fs::create_symlink(outside, d / "x.txt"); },
       "a symbolic link to"},
      {"relative link out",
       [&](const fs::path& d) { fs::create_symlink("../../outside.txt", d / "1_Pooling" / "x"); },
       "outside"},
      {"dangling link", [&](const fs::path& d) { fs::create_symlink("nowhere", d / "x"); },
       "a symbolic link that cannot be followed"},
      {"link to a folder", [&](const fs::path& d) { fs::create_symlink("1_Pooling", d / "p2"); },
       "a symbolic link to the folder"},
      {"fifo", [&](const fs::path& d) { ASSERT_EQ(::mkfifo((d / "pipe").c_str(), 0644), 0); },
       "pipe: is a FIFO; only regular files"},
      {"link to a fifo",
       [&](const fs::path& d) {
         ASSERT_EQ(::mkfifo((d / "pipe2").c_str(), 0644), 0);
         fs::rename(d / "pipe2", d / "1_Pooling" / "pipe2");
         fs::create_symlink("1_Pooling/pipe2", d / "fifo-link");
       },
       "is a FIFO"},
      {"bad file name", [&](const fs::path& d) { write_file(d / "a\\b", "x"); },
       "invalid file name"},
  };
  int n = 0;
  for (const Case& c : cases) {
    const fs::path d = copy_of(kTinySt, tmp.path() / ("case" + std::to_string(n)));
    const fs::path case_cache = tmp.path() / ("cache" + std::to_string(n++));
    c.make(d);
    const std::string msg =
        error_of<InvalidArgument>([&] { import_model_folder(d, "org/l", opts(case_cache)); });
    EXPECT_NE(msg.find(c.expect), std::string::npos) << c.name << ": " << msg;
    EXPECT_FALSE(fs::exists(case_cache)) << c.name << ": the cache was touched";
  }
}

TEST(Import, LeavesOutGitAndHuggingfaceMetadata) {
  TempDir tmp;
  const fs::path dir = copy_of(kTinySt, tmp.path() / "m");
  write_file(dir / ".git" / "HEAD", "ref: refs/heads/main\n");
  write_file(dir / ".cache" / "huggingface" / "download" / "config.json.metadata", "x");
  write_file(dir / "sub" / ".git", "gitdir: ../.git/modules/sub\n");
  write_file(dir / ".gitattributes", "*.safetensors filter=lfs\n");
  const ImportResult r = import_model_folder(dir, "org/g", opts(tmp.path() / "cache"));
  std::set<std::string> paths;
  for (const auto& f : r.files) paths.insert(f.path);
  EXPECT_TRUE(paths.count(".gitattributes"));
  for (const auto& p : paths) {
    EXPECT_EQ(p.find(".git/"), std::string::npos) << p;
    EXPECT_NE(p, "sub/.git");
    EXPECT_EQ(p.find(".cache/"), std::string::npos) << p;
  }
}

TEST(Import, BadArguments) {
  TempDir tmp;
  const fs::path cache = tmp.path() / "cache";
  std::string msg = error_of<InvalidArgument>(
      [&] { import_model_folder(kTinySt, "all-MiniLM-L6-v2", opts(cache)); });
  EXPECT_NE(msg.find("read as sentence-transformers/all-MiniLM-L6-v2"), std::string::npos) << msg;
  for (const char* bad : {"a/b/c", "../x", "org/--x", "", "org/", "/name", "org/na me"}) {
    msg = error_of<InvalidArgument>([&] { import_model_folder(kTinySt, bad, opts(cache)); });
    EXPECT_NE(msg.find("is not a Hugging Face repo id"), std::string::npos) << bad << ": " << msg;
  }
  for (const char* bad : {"", "../x", "a//b", "/main", "0123456789abcdef0123456789abcdef01234567"}) {
    msg = error_of<InvalidArgument>([&] { import_model_folder(kTinySt, "org/x", opts(cache, bad)); });
    EXPECT_NE(msg.find("--revision"), std::string::npos) << bad << ": " << msg;
  }
  msg = error_of<IoError>([&] { import_model_folder(tmp.path() / "missing", "org/x", opts(cache)); });
  EXPECT_NE(msg.find("cannot open the folder"), std::string::npos) << msg;
  write_file(tmp.path() / "file", "x");
  msg = error_of<InvalidArgument>([&] { import_model_folder(tmp.path() / "file", "org/x", opts(cache)); });
  EXPECT_NE(msg.find("not a model folder"), std::string::npos) << msg;
  fs::create_directories(tmp.path() / "empty" / "sub");
  msg = error_of<InvalidArgument>([&] { import_model_folder(tmp.path() / "empty", "org/x", opts(cache)); });
  EXPECT_NE(msg.find("no files to import"), std::string::npos) << msg;
  ImportOptions few = opts(cache);
  few.max_files = 3;
  msg = error_of<InvalidArgument>([&] { import_model_folder(kTinySt, "org/x", few); });
  EXPECT_NE(msg.find("more than 3 files"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(cache));
  // Refs nested like refs/pr/1 are fine.
  EXPECT_TRUE(import_model_folder(kTinySt, "org/x", opts(cache, "refs/pr/1")).ref_changed);
  EXPECT_TRUE(fs::is_regular_file(cache / "models--org--x" / "refs" / "refs" / "pr" / "1"));
}

// A failure after blobs were written leaves neither the snapshot nor those blobs behind.
TEST(Import, AFailureLeavesNothingHalfDone) {
  TempDir tmp;
  const fs::path cache = tmp.path() / "cache";
  const fs::path repo = cache / "models--org--f";
  // snapshots/ is a file: the blobs get written, then the snapshot cannot be put in place.
  write_file(repo / "snapshots", "not a folder");
  std::string msg = error_of<IoError>([&] { import_model_folder(kTinySt, "org/f", opts(cache)); });
  EXPECT_NE(msg.find("snapshots"), std::string::npos) << msg;
  EXPECT_EQ(tree(repo), std::vector<std::string>({"blobs", "snapshots"}));

  // refs/ is a file: the snapshot was in place, the ref cannot be written; both are undone.
  fs::remove(repo / "snapshots");
  write_file(repo / "refs", "not a folder");
  msg = error_of<IoError>([&] { import_model_folder(kTinySt, "org/f", opts(cache)); });
  EXPECT_NE(msg.find("refs"), std::string::npos) << msg;
  EXPECT_EQ(tree(repo), std::vector<std::string>({"blobs", "refs", "snapshots"}));

  // Once the cause is gone, the import succeeds.
  fs::remove(repo / "refs");
  EXPECT_TRUE(import_model_folder(kTinySt, "org/f", opts(cache)).created);
  EXPECT_EQ(resolve_model_info("org/f", offline(cache)).dir.parent_path(), repo / "snapshots");
}

// ---------------------------------------------------------------------------- scan (models list)

TEST(Scan, ReportsWhatWasImported) {
  TempDir tmp;
  const fs::path cache = tmp.path() / "cache";
  const ImportResult a = import_model_folder(kTinySt, "org/a", opts(cache));
  import_model_folder(kTinySt, "org/a", opts(cache, "v1"));
  const fs::path other = copy_of(kTinySt, tmp.path() / "other");
  write_file(other / "config.json", "{\"other\": 1}\n");
  const ImportResult b = import_model_folder(other, "org/a", opts(cache, "dev"));
  const ImportResult c = import_model_folder(
      fs::path(MMEMBED_TEST_DATA_DIR) / "models" / "clip-tiny-gelu", "other/clip", opts(cache));

  const CacheScan s = scan_cache(cache);
  EXPECT_TRUE(s.exists);
  EXPECT_EQ(s.cache_dir, fs::canonical(cache));
  EXPECT_TRUE(s.warnings.empty());
  ASSERT_EQ(s.repos.size(), 2u);
  const CachedRepo& ra = s.repos[0];
  EXPECT_EQ(ra.repo_id, "org/a");
  EXPECT_EQ(ra.repo_type, "model");
  EXPECT_EQ(ra.repo_path, fs::canonical(cache) / "models--org--a");
  EXPECT_EQ(ra.refs, (std::vector<std::string>{"dev", "main", "v1"}));
  ASSERT_EQ(ra.revisions.size(), 2u);
  // Blobs are shared: the repository counts each once.
  std::set<std::string> blobs;
  std::uint64_t size = 0;
  for (const auto* r : {&a, &b}) {
    for (const auto& f : r->files) {
      if (blobs.insert(f.blob).second) size += f.size;
    }
  }
  EXPECT_EQ(ra.nb_files, blobs.size());
  EXPECT_EQ(ra.size_on_disk, size);
  for (const CachedRevision& rev : ra.revisions) {
    const ImportResult& imp = rev.commit_hash == a.commit ? a : b;
    EXPECT_EQ(rev.snapshot_path, fs::canonical(cache) / "models--org--a" / "snapshots" / imp.commit);
    EXPECT_EQ(rev.size_on_disk, imp.bytes);  // no duplicate content within one snapshot
    ASSERT_EQ(rev.files.size(), imp.files.size());
    for (std::size_t i = 0; i < rev.files.size(); ++i) {
      EXPECT_EQ(rev.files[i].name, imp.files[i].path);
      EXPECT_EQ(rev.files[i].size_on_disk, imp.files[i].size);
      EXPECT_EQ(rev.files[i].blob_path.filename(), imp.files[i].blob);
    }
    const std::vector<std::string> refs =
        rev.commit_hash == a.commit ? std::vector<std::string>{"main", "v1"}
                                    : std::vector<std::string>{"dev"};
    EXPECT_EQ(rev.refs, refs);
  }
  EXPECT_EQ(s.repos[1].repo_id, "other/clip");
  EXPECT_EQ(s.repos[1].size_on_disk, c.bytes);
  EXPECT_EQ(s.size_on_disk, ra.size_on_disk + s.repos[1].size_on_disk);
  EXPECT_GT(ra.last_modified, 0);
  EXPECT_GE(ra.last_accessed, 0);
}

TEST(Scan, ReadsACacheWrittenByHuggingfaceHub) {
  const CacheScan s = scan_cache(kPyCache);
  ASSERT_EQ(s.repos.size(), 1u) << (s.warnings.empty() ? "" : s.warnings[0]);
  const CachedRepo& r = s.repos[0];
  EXPECT_EQ(r.repo_id, "org/tiny");
  EXPECT_EQ(r.refs, std::vector<std::string>{"main"});
  ASSERT_EQ(r.revisions.size(), 1u);
  EXPECT_EQ(r.revisions[0].commit_hash, "1a5fe6c394df20de001cccaee4c006e3f7669769");
  EXPECT_EQ(r.nb_files, 4u);
  // GENERATED_BY at the top is not a repository folder: a warning, as in Python.
  ASSERT_EQ(s.warnings.size(), 1u);
  EXPECT_NE(s.warnings[0].find("Repo path is not a directory"), std::string::npos) << s.warnings[0];
}

TEST(Scan, LeavesOutWhatIsNotACacheEntryWithAWarning) {
  TempDir tmp;
  const fs::path cache = tmp.path() / "cache";
  import_model_folder(kTinySt, "org/good", opts(cache));
  write_file(cache / "CACHEDIR.TAG", "Signature: 8a477f597d28d172789f06886806bc55\n");
  write_file(cache / ".locks" / "models--org--good" / "x.lock", "");
  write_file(cache / "stray.txt", "x");
  fs::create_directories(cache / "nodashes");
  fs::create_directories(cache / "models--no-snapshots" / "blobs");
  fs::create_directories(cache / "things--org--x" / "snapshots");
  import_model_folder(kTinySt, "org/dangling-ref", opts(cache));
  write_file(cache / "models--org--dangling-ref" / "refs" / "v2", "0000000000000000000000000000000000000000");
  import_model_folder(kTinySt, "org/broken", opts(cache));
  const auto r = import_model_folder(kTinySt, "org/broken", opts(cache));
  fs::create_symlink("../../blobs/missing", r.repo_path / "snapshots" / r.commit / "gone.txt");
  import_model_folder(kTinySt, "org/fifo-ref", opts(cache));
  ASSERT_EQ(::mkfifo((cache / "models--org--fifo-ref" / "refs" / "pipe").c_str(), 0644), 0);
  write_file(cache / "models--org--newline" / "refs" / "main", std::string(40, 'a') + "\n");
  fs::create_directories(cache / "models--org--newline" / "snapshots" / std::string(40, 'a'));

  const CacheScan s = scan_cache(cache);
  std::vector<std::string> ids;
  for (const auto& repo : s.repos) ids.push_back(repo.repo_id);
  EXPECT_EQ(ids, std::vector<std::string>{"org/good"});
  const std::vector<std::string> expected = {
      "Snapshots dir doesn't exist in cached repo",
      "Blob missing (broken symlink)",
      "Reference(s) refer to missing commit hashes: v2 -> '0000000000000000000000000000000000000000'",
      "Cannot read ref",
      "Reference(s) refer to missing commit hashes: main",
      "Repo path is not a valid HuggingFace cache directory",
      "Repo path is not a directory",
      "Repo type must be `dataset`, `model` or `space`, found `thing`",
  };
  ASSERT_EQ(s.warnings.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i)
    EXPECT_NE(s.warnings[i].find(expected[i]), std::string::npos) << i << ": " << s.warnings[i];
}

TEST(Scan, NoCacheAndNotAFolder) {
  TempDir tmp;
  const CacheScan none = scan_cache(tmp.path() / "missing");
  EXPECT_FALSE(none.exists);
  EXPECT_TRUE(none.repos.empty());
  write_file(tmp.path() / "file", "x");
  const std::string msg = error_of<IoError>([&] { scan_cache(tmp.path() / "file"); });
  EXPECT_NE(msg.find("must be a folder"), std::string::npos) << msg;
}

TEST(Scan, FormatsAsHuggingfaceHub) {
  EXPECT_EQ(format_size(0), "0.0");
  EXPECT_EQ(format_size(999), "999.0");
  EXPECT_EQ(format_size(1000), "1.0K");
  EXPECT_EQ(format_size(466247), "466.2K");
  EXPECT_EQ(format_size(90868376), "90.9M");
  EXPECT_EQ(format_size(3398085269ull), "3.4G");
  const double now = 1'700'000'000;
  EXPECT_EQ(format_timesince(now - 5, now), "a few seconds ago");
  EXPECT_EQ(format_timesince(now - 30, now), "30 seconds ago");
  EXPECT_EQ(format_timesince(now - 90, now), "2 minutes ago");
  EXPECT_EQ(format_timesince(now - 150, now), "2 minutes ago");  // round half to even
  EXPECT_EQ(format_timesince(now - 3600, now), "60 minutes ago");  // as Python: 60 <= 60
  EXPECT_EQ(format_timesince(now - 7200, now), "2 hours ago");
  EXPECT_EQ(format_timesince(now - 3 * 86400, now), "3 days ago");
  EXPECT_EQ(format_timesince(now - 8 * 86400, now), "1 week ago");
  EXPECT_EQ(format_timesince(now - 100 * 86400, now), "3 months ago");
  EXPECT_EQ(format_timesince(now - 800 * 86400.0, now), "2 years ago");
}

}  // namespace
}  // namespace mmembed::hub
