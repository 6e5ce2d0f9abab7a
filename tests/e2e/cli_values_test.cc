// Command-line values and output paths (issue #18), through the real `mmembed` binary, run with
// an argument vector (no shell) so that every byte of every value is the test's own:
//  - texts and paths reach the library byte for byte (brackets, commas, leading dashes, quotes,
//    newlines; random strings), for every command and option that takes one;
//  - each kind of output path (regular file, new path, link, FIFO, /dev/null, /dev/full,
//    folder, "-") is written, written in place or refused, and never replaced by mistake;
//  - a failed write to standard output is an error, not exit 0;
//  - every numeric option of every command refuses 0/-1/huge/non-numeric values outside its
//    range with a message naming the option, the value and the range.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "mmembed/embedder.h"

namespace {

namespace fs = std::filesystem;

const std::string kData = MMEMBED_TEST_DATA_DIR;
const std::string kMiniLm = kData + "/models/minilm-tiny-st";
const std::string kBridge = kData + "/models/bridgetower-large-tiny";
const std::string kClip = kData + "/models/clip-tiny-gelu";
const std::string kCat = kData + "/images/cat_landscape.jpg";
const std::string kEmb = kData + "/analysis/inputs/emb_f32.npy";
const std::string kClusters = kData + "/analysis/inputs/clusters.npy";

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct CliRun {
  int rc = -1;
  std::string out, err;
};

// A fresh folder per test, removed afterwards.
class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::replace(test.begin(), test.end(), '/', '_');  // parameterized names hold a '/'
    dir_ = fs::temp_directory_path() /
           ("mmembed-cli-values-" + std::to_string(::getpid()) + "-" + test);
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Runs mmembed with `args` as its argv; stdout goes to `stdout_path` when given (e.g.
  // /dev/full), else it is captured.
  CliRun run(const std::vector<std::string>& args, const std::string& stdout_path = "") const {
    const fs::path out = stdout_path.empty() ? dir_ / ".stdout" : fs::path(stdout_path);
    const fs::path err = dir_ / ".stderr";
    // Built before fork(): the child (of a process that may have threads) only makes
    // async-signal-safe calls.
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(MMEMBED_CLI));
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    const pid_t pid = ::fork();
    if (pid == 0) {
      const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      const int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (o < 0 || e < 0 || ::dup2(o, 1) < 0 || ::dup2(e, 2) < 0) ::_exit(126);
      ::execv(MMEMBED_CLI, argv.data());
      ::_exit(127);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    CliRun r;
    r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (stdout_path.empty()) r.out = slurp(out);
    r.err = slurp(err);
    return r;
  }

  // The JSONL rows of `embed`'s output.
  static std::vector<nlohmann::json> rows(const std::string& text) {
    std::vector<nlohmann::json> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) out.push_back(nlohmann::json::parse(line));
    }
    return out;
  }

  // Names in dir_ other than the ones given: temporaries left behind show up here.
  std::vector<std::string> others(const std::set<std::string>& keep) const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) {
      const std::string name = e.path().filename().string();
      if (!keep.count(name) && name != ".stdout" && name != ".stderr") out.push_back(name);
    }
    return out;
  }

  fs::path dir_;
};

#define EXPECT_RUN(r, code) \
  EXPECT_EQ((r).rc, code) << "stdout:\n" << (r).out << "\nstderr:\n" << (r).err

// ---------------------------------------------------------------------------------------------
// 1. Texts and paths reach the library byte for byte.

const std::vector<std::string> kTrickyTexts = {
    "[brackets]", "[1,2,3]", "[a cat, with a hat]", "a,b,c", "[]", "[,]", "{}", "{a,b}",
    "-leading dash", "--text", "--", "-", "\"quoted\"", "'single'", "back\\slash",
    "line one\nline two", "tab\there", "a=b", "%%", "@file", " padded ", "[unclosed", "closed]",
    "\x01\x02 control bytes \x7f", "caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x90\xb1", "; rm -rf /",
    "$(echo no)", "*?", "#", "!!", "~/x"};

TEST_F(CliTest, EmbedTextsArriveByteForByte) {
  // Each text as --text=VALUE (works for leading dashes too), and as --text VALUE where CLI11
  // can tell it from an option.
  std::vector<std::string> args = {"--threads", "1", "embed", "--model", kMiniLm};
  std::vector<std::string> expect;
  for (const std::string& t : kTrickyTexts) {
    args.push_back("--text=" + t);
    expect.push_back(t);
  }
  for (const std::string& t : kTrickyTexts) {
    if (t[0] == '-') continue;
    args.push_back("--text");
    args.push_back(t);
    expect.push_back(t);
  }
  const CliRun r = run(args);
  ASSERT_EQ(r.rc, 0) << r.err;
  const std::vector<nlohmann::json> got = rows(r.out);
  ASSERT_EQ(got.size(), expect.size());
  for (std::size_t i = 0; i < expect.size(); ++i) {
    EXPECT_EQ(got[i]["text"].get<std::string>(), expect[i]) << "row " << i;
  }

  // And the model saw those texts: the embeddings are the library's for the same strings.
  mmembed::EmbedderOptions o;
  o.threads = 1;
  const mmembed::Embedder e = mmembed::Embedder::load(kMiniLm, o);
  const mmembed::Embeddings lib = e.embed_texts(expect);
  ASSERT_EQ(lib.rows, expect.size());
  for (std::size_t i = 0; i < expect.size(); ++i) {
    const auto& v = got[i]["embedding"];
    ASSERT_EQ(v.size(), lib.dim);
    for (std::size_t d = 0; d < lib.dim; ++d) {
      EXPECT_NEAR(v[d].get<double>(), lib.row(i)[d], 1e-6) << "row " << i << " dim " << d;
    }
  }
}

// Property: random strings of the characters that command-line parsers treat specially (and
// UTF-8, control bytes), never NUL, each with at least one non-space byte.
TEST_F(CliTest, RandomTextsArriveByteForByte) {
  const std::string specials = "[]{},;=-\"'\\ \t\n\r%@!$*?#~:|<>()&^`";
  const std::vector<std::string> multibyte = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
                                              "\xe4\xb8\xad"};
  std::mt19937 rng(18);
  std::vector<std::string> texts;
  for (int i = 0; i < 300; ++i) {
    std::string s;
    const int len = 1 + static_cast<int>(rng() % 24);
    for (int k = 0; k < len; ++k) {
      const unsigned pick = rng() % 10;
      if (pick < 5) s += specials[rng() % specials.size()];
      else if (pick < 7) s += static_cast<char>('a' + rng() % 26);
      else if (pick < 8) s += static_cast<char>(1 + rng() % 31);  // control bytes, no NUL
      else s += multibyte[rng() % multibyte.size()];
    }
    if (s.find_first_not_of(" \t\r\n\f\v") == std::string::npos) s += 'x';
    if (i % 4 == 0) s = "[" + s + "]";  // what CLI11 took for a list
    texts.push_back(s);
  }
  // Every other text as a separate argument (where it cannot be read as an option).
  std::vector<std::string> args = {"--threads", "1", "embed", "--model", kMiniLm};
  for (std::size_t i = 0; i < texts.size(); ++i) {
    if (i % 2 == 1 && texts[i][0] != '-') {
      args.push_back("--text");
      args.push_back(texts[i]);
    } else {
      args.push_back("--text=" + texts[i]);
    }
  }
  const CliRun r = run(args);
  ASSERT_EQ(r.rc, 0) << r.err;
  const std::vector<nlohmann::json> got = rows(r.out);
  ASSERT_EQ(got.size(), texts.size());
  for (std::size_t i = 0; i < texts.size(); ++i) {
    EXPECT_EQ(got[i]["text"].get<std::string>(), texts[i]) << "text #" << i + 1;
  }
}

// Bytes that are not UTF-8 cannot be tokenized (nor written to JSON as they are): refused with
// the option and the index of the text, before the model is loaded.
TEST_F(CliTest, InvalidUtf8TextIsRefusedByIndex) {
  CliRun r = run({"embed", "--model", kMiniLm, "--text", "ok", "--text", "bad \xff byte"});
  EXPECT_RUN(r, 1);
  EXPECT_NE(r.err.find("--text #2: invalid UTF-8 at byte 4"), std::string::npos) << r.err;
  r = run({"match", "--model", kBridge, "--image", kCat, "--text", "\xc3"});
  EXPECT_RUN(r, 1);
  EXPECT_NE(r.err.find("--text #1: invalid UTF-8 at byte 0"), std::string::npos) << r.err;
  r = run({"classify", "--model", kClip, "--image", kCat, "--label", "a", "--label", "\xe2\x82"});
  EXPECT_RUN(r, 1);
  EXPECT_NE(r.err.find("--label #2 (\"\\xe2\\x82\"): invalid UTF-8 at byte 0"),
            std::string::npos)
      << r.err;
  // --labels splits one value at commas: the label is named by its place and quoted escaped.
  r = run({"classify", "--model", kClip, "--image", kCat, "--labels", "a cat,a d\xffg"});
  EXPECT_RUN(r, 1);
  EXPECT_NE(r.err.find("--labels: label #2 (\"a d\\xffg\"): invalid UTF-8 at byte 3"),
            std::string::npos)
      << r.err;
}

TEST_F(CliTest, PairAndImagePathsWithBracketsAndCommas) {
  const fs::path image = dir_ / "[a, b].jpg";
  fs::copy_file(kCat, image);
  const CliRun r = run({"--threads", "1", "embed", "--model", kBridge, "--image", image.string(),
                     "--pair", image.string(), "[a cat, with a hat]", "--pair", kCat,
                     "-dash caption"});
  ASSERT_EQ(r.rc, 0) << r.err;
  const std::vector<nlohmann::json> got = rows(r.out);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0]["image"], image.string());
  EXPECT_EQ(got[1]["image"], image.string());
  EXPECT_EQ(got[1]["text"], "[a cat, with a hat]");
  EXPECT_EQ(got[2]["text"], "-dash caption");
}

TEST_F(CliTest, MatchScoresOneTextPerOption) {
  const CliRun r = run({"match", "--model", kBridge, "--image", kCat, "--json", "--text",
                     "[a cat, with a hat]", "--text=[1,2,3]"});
  ASSERT_EQ(r.rc, 0) << r.err;
  const std::vector<nlohmann::json> got = rows(r.out);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0]["text"], "[a cat, with a hat]");
  EXPECT_EQ(got[1]["text"], "[1,2,3]");
}

TEST_F(CliTest, OneValuePerRepeatableOption) {
  // Before: `--text a b` made two texts (and `--text [a,b]` too); a stray word is now an error.
  const CliRun r = run({"embed", "--model", kMiniLm, "--text", "a", "b"});
  EXPECT_RUN(r, 2);
  EXPECT_NE(r.err.find("b"), std::string::npos) << r.err;
}

// A usage error quotes the value CLI11 or cli::bound refused; control bytes and invalid UTF-8
// in it are written as \xNN like in every other error, never raw to the terminal.
TEST_F(CliTest, UsageErrorsQuoteValuesEscaped) {
  const std::string evil = "\x1b[2J\x07\xff";
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"embed", "--model", kMiniLm, "--text", "a", evil},
        std::vector<std::string>{"--threads", evil, "inspect", kEmb},
        std::vector<std::string>{"embed", "--model", kMiniLm, "--bogus" + evil}}) {
    const CliRun r = run(args);
    EXPECT_RUN(r, 2);
    EXPECT_NE(r.err.find("\\x1b[2J\\x07\\xff"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find_first_of("\x1b\x07\xff"), std::string::npos) << r.err;
  }
}

TEST_F(CliTest, ClassifyLabelKeepsCommas) {
  const CliRun r = run({"classify", "--model", kClip, "--image", kCat, "--json", "--label",
                     "a cat, with a hat", "--label", "[a dog]"});
  ASSERT_EQ(r.rc, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  std::set<std::string> labels;
  for (const auto& l : j["labels"]) labels.insert(l["label"].get<std::string>());
  EXPECT_EQ(labels, (std::set<std::string>{"a cat, with a hat", "[a dog]"}));
  const CliRun both = run({"classify", "--model", kClip, "--image", kCat, "--labels", "a,b",
                        "--label", "c"});
  EXPECT_RUN(both, 1);
  EXPECT_NE(both.err.find("not both"), std::string::npos) << both.err;
}

TEST_F(CliTest, MatrixPathsWithBracketsAndCommas) {
  const fs::path in = dir_ / "[x, y].npy";
  fs::copy_file(kClusters, in);
  const fs::path labels = dir_ / "[labels].txt";
  fs::copy_file(kData + "/analysis/inputs/clusters_labels.txt", labels);
  const fs::path out = dir_ / "-[out, 1].csv";
  CliRun r = run({"similarity", in.string(), "--top", "1"});
  EXPECT_RUN(r, 0);
  r = run({"reduce", in.string(), "--labels", labels.string(), "-o", out.string()});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_TRUE(fs::is_regular_file(out));
  EXPECT_TRUE(fs::is_regular_file(dir_ / "-[out, 1].quality.json"));
  const fs::path png = dir_ / "[plot, 1].png";
  r = run({"plot", out.string(), "-o", png.string(), "--title", "[a, b]"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_TRUE(fs::is_regular_file(png));
}

// ---------------------------------------------------------------------------------------------
// 2. Output paths of every kind.

TEST_F(CliTest, OutputToRegularNewAndLinkedFiles) {
  const fs::path existing = dir_ / "old.tsv";
  std::ofstream(existing) << "old";
  ASSERT_EQ(::chmod(existing.c_str(), 0640), 0);
  CliRun r = run({"similarity", kEmb, "-o", existing.string()});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(slurp(existing), "old");
  EXPECT_EQ(fs::status(existing).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);

  const fs::path target = dir_ / "target.csv";
  const fs::path link = dir_ / "link.csv";
  std::ofstream(target) << "old";
  fs::create_symlink(target, link);
  r = run({"similarity", kEmb, "-o", link.string()});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_NE(slurp(target).find(','), std::string::npos);

  const fs::path fresh = dir_ / "new.jsonl";
  r = run({"embed", "--model", kMiniLm, "--text", "a cat", "-o", fresh.string()});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(rows(slurp(fresh)).size(), 1u);
  EXPECT_TRUE(others({"old.tsv", "target.csv", "link.csv", "new.jsonl"}).empty());
}

TEST_F(CliTest, OutputToFifoIsWrittenInPlace) {
  const fs::path fifo = dir_ / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::string got;
  std::thread reader([&] { got = slurp(fifo); });
  const CliRun r = run({"embed", "--model", kMiniLm, "--text", "a cat", "-o", fifo.string()});
  reader.join();
  EXPECT_RUN(r, 0);
  EXPECT_EQ(rows(got).size(), 1u);
  struct stat st {};
  ASSERT_EQ(::lstat(fifo.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode)) << "the FIFO was replaced";
  EXPECT_TRUE(others({"fifo"}).empty());
}

TEST_F(CliTest, OutputToDevicesIsNeverReplaced) {
  CliRun r = run({"similarity", kEmb, "-o", "/dev/null"});
  EXPECT_RUN(r, 0);
  r = run({"reduce", kClusters, "-o", "/dev/null"});
  EXPECT_RUN(r, 0);
  EXPECT_NE(r.out.find("quality metrics were not written"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists("/dev/null.quality.json"));
  if (fs::exists("/dev/full")) {
    r = run({"similarity", kEmb, "-o", "/dev/full"});
    EXPECT_RUN(r, 1);
    EXPECT_NE(r.err.find("/dev/full: cannot write (No space left on device)"), std::string::npos)
        << r.err;
    r = run({"reduce", kClusters, "-o", "/dev/full"});
    EXPECT_RUN(r, 1);
    EXPECT_FALSE(fs::exists("/dev/full.quality.json"));
    r = run({"embed", "--model", kMiniLm, "--text", "a", "-o", "/dev/full", "--format", "npy"});
    EXPECT_RUN(r, 1);
    struct stat st {};
    ASSERT_EQ(::lstat("/dev/full", &st), 0);
    EXPECT_TRUE(S_ISCHR(st.st_mode));
  }
  struct stat st {};
  ASSERT_EQ(::lstat("/dev/null", &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
}

TEST_F(CliTest, OutputToFolderIsRefusedBeforeTheWork) {
  const fs::path sub = dir_ / "sub.png";  // .png: plot picks its format by the extension
  fs::create_directories(sub);
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"embed", "--model", kMiniLm, "--text", "a", "-o", sub.string()},
        {"similarity", kEmb, "-o", sub.string()},
        {"reduce", kClusters, "-o", sub.string()},
        {"plot", kData + "/plot/points.csv", "-o", sub.string()}}) {
    const CliRun r = run(args);
    EXPECT_RUN(r, 1);
    EXPECT_NE(r.err.find("sub.png: is a folder"), std::string::npos) << args[0] << ": " << r.err;
  }
  EXPECT_TRUE(fs::is_empty(sub));
  EXPECT_TRUE(others({"sub.png"}).empty());
}

TEST_F(CliTest, OutputDashIsStdout) {
  CliRun r = run({"embed", "--model", kMiniLm, "--text", "a cat", "-o", "-"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(rows(r.out).size(), 1u);
  r = run({"reduce", kClusters, "-o", "-"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out.rfind("x,y\n", 0), 0u) << r.out.substr(0, 100);
  EXPECT_NE(r.err.find("wrote standard output"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir_ / "-"));
  EXPECT_FALSE(fs::exists("-"));
}

// ---------------------------------------------------------------------------------------------
// 3. Write errors on standard output.

TEST_F(CliTest, FullStdoutIsAnError) {
  if (!fs::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"embed", "--model", kMiniLm, "--text", "a cat"},
        {"inspect", kData + "/io/single.safetensors"},
        {"inspect", kData + "/io/torch_state.bin", "--json"},
        {"similarity", kEmb},
        {"--help"}}) {
    const CliRun r = run(args, "/dev/full");
    EXPECT_EQ(r.rc, 1) << args[0] << ": " << r.err;
    EXPECT_NE(r.err.find("standard output"), std::string::npos) << args[0] << ": " << r.err;
    EXPECT_NE(r.err.find("No space left on device"), std::string::npos) << args[0] << ": "
                                                                        << r.err;
  }
}

// A closed stdout is an error only when something was to be written there.
TEST_F(CliTest, ClosedStdoutFailsOnlyWhenWrittenTo) {
  const fs::path out = dir_ / "e.jsonl";
  const auto run_closed = [&](const std::vector<std::string>& args) {
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(MMEMBED_CLI));
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    const fs::path err = dir_ / ".stderr";
    const pid_t pid = ::fork();
    if (pid == 0) {
      const int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (e < 0 || ::dup2(e, 2) < 0) ::_exit(126);
      ::close(1);
      ::execv(MMEMBED_CLI, argv.data());
      ::_exit(127);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return CliRun{WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), "",
                  slurp(err)};
  };
  CliRun r = run_closed({"embed", "--model", kMiniLm, "--text", "a", "-o", out.string()});
  EXPECT_RUN(r, 0);
  EXPECT_EQ(rows(slurp(out)).size(), 1u);
  r = run_closed({"similarity", kEmb});
  EXPECT_RUN(r, 1);
  EXPECT_NE(r.err.find("standard output: cannot write (Bad file descriptor)"), std::string::npos)
      << r.err;
  r = run_closed({"inspect", kData + "/io/single.safetensors"});
  EXPECT_RUN(r, 1);
  EXPECT_NE(r.err.find("error writing standard output: Bad file descriptor"), std::string::npos)
      << r.err;
}

// ---------------------------------------------------------------------------------------------
// 6 and 10. Numeric options: every one bounded, with messages naming option, value and range.

struct NumericOption {
  std::vector<std::string> command;  // the command and the arguments it needs to start
  std::string name;
  std::string lo, hi;  // the accepted range, as the message prints it
  bool integer;
};

// How gtest shows a parameter (instead of its bytes).
void PrintTo(const NumericOption& o, std::ostream* os) {
  *os << o.command[0] << " " << o.name << " (" << o.lo << " to " << o.hi << ")";
}

std::vector<NumericOption> numeric_options() {
  // Under a regular file: can neither exist nor be created, so nothing is left behind.
  const std::string missing = kCat + "/missing";
  const std::vector<std::string> embed = {"embed", "--model", missing, "--text", "a"};
  const std::vector<std::string> match = {"match", "--model", missing, "--image", kCat,
                                          "--text", "a"};
  const std::vector<std::string> classify = {"classify", "--model", missing, "--image", kCat,
                                             "--labels", "a,b"};
  const std::vector<std::string> similarity = {"similarity", missing + ".npy"};
  const std::vector<std::string> reduce = {"reduce", missing + ".npy", "-o", missing + ".csv"};
  const std::vector<std::string> plot = {"plot", missing + ".csv", "-o", missing + ".png"};
  const std::vector<std::string> demo = {"demo", "--model", missing, "--no-download", "-o",
                                         missing};
  const std::vector<std::string> fetch = {"fetch", missing + ".csv", "-o", missing};
  return {
      {{"inspect", missing}, "--threads", "0", "1024", true},
      {embed, "--batch-size", "1", "65536", true},
      {embed, "--chunk-size", "1", "1000000", true},
      {embed, "--max-image-pixels", "0", "1000000000000", true},
      {match, "--max-image-pixels", "0", "1000000000000", true},
      {classify, "--top", "0", "1000000000", true},
      {classify, "--batch-size", "1", "65536", true},
      {classify, "--max-image-pixels", "0", "1000000000000", true},
      {similarity, "--p", "1", "100", false},
      {similarity, "--top", "1", "1000000000", true},
      {reduce, "--components", "1", "65536", true},
      {reduce, "--p", "1", "100", false},
      {reduce, "--seed", "0", "18446744073709551615", true},
      {reduce, "--n-neighbors", "2", "100000", true},
      {reduce, "--min-dist", "0", "1000", false},
      {reduce, "--spread", "0.001", "1000", false},
      {reduce, "--epochs", "0", "1000000", true},
      {reduce, "--perplexity", "1", "30000", false},
      {reduce, "--iterations", "0", "1000000", true},
      {reduce, "--theta", "0", "10", false},
      {reduce, "--learning-rate", "0", "1000000", false},
      {reduce, "--quality-rows", "1", "1000000000", true},
      {plot, "--thumbnail-size", "4", "1024", true},
      {plot, "--point-size", "0.1", "200", false},
      {plot, "--alpha", "0", "1", false},
      {plot, "--width", "64", "16384", true},
      {plot, "--height", "64", "16384", true},
      {plot, "--dpi", "10", "1200", true},
      {demo, "--seed", "0", "18446744073709551615", true},
      {demo, "--batch-size", "1", "65536", true},
      {fetch, "--jobs", "1", "256", true},
      {fetch, "--max-bytes", "1", "1099511627776", true},
      {fetch, "--connect-timeout", "0.001", "604800", false},
      {fetch, "--timeout", "0.001", "604800", false},
      {fetch, "--stall-timeout", "1", "604800", false},
      {fetch, "--retries", "0", "20", true},
      {fetch, "--backoff", "0", "3600", false},
      {fetch, "--max-redirects", "0", "50", true},
  };
}

// The table above covers every numeric option that --help lists, so a new option cannot escape
// the bound checks below (main() also aborts on a numeric option without bounds).
TEST_F(CliTest, EveryNumericOptionIsInTheTable) {
  std::set<std::pair<std::string, std::string>> table;
  for (const NumericOption& o : numeric_options()) {
    table.insert({o.command[0] == "inspect" ? "" : o.command[0], o.name});
  }
  const std::regex numeric(R"((--[a-z-]+) (INT|UINT|FLOAT))");
  for (const std::string cmd : {"", "inspect", "similarity", "reduce", "embed", "match",
                                "classify", "plot", "demo", "fetch"}) {
    const CliRun r = cmd.empty() ? run({"--help"}) : run({cmd, "--help"});
    ASSERT_EQ(r.rc, 0) << cmd << ": " << r.err;
    for (std::sregex_iterator it(r.out.begin(), r.out.end(), numeric), end; it != end; ++it) {
      const std::string name = (*it)[1];
      if (!cmd.empty() && name == "--threads") continue;  // the global option, listed once
      EXPECT_TRUE(table.count({cmd, name})) << "mmembed " << cmd << " " << name
                                            << " is numeric but not in numeric_options()";
    }
  }
}

// One test per option (ctest runs them side by side; each starts the binary ~15 times).
class NumericOptionTest : public CliTest, public ::testing::WithParamInterface<NumericOption> {};

TEST_P(NumericOptionTest, RefusesValuesOutsideItsRange) {
  const NumericOption& o = GetParam();
  {
    std::vector<std::string> bad = {"-1", "18446744073709551616", "99999999999999999999999",
                                    "1e400", "abc", "", "nan", "inf", "0x10", "12abc", " 5"};
    if (o.integer) bad.push_back("1.5");
    if (o.lo != "0") bad.push_back("0");
    // Above the maximum (for the integer maxima below 2^64 - 1).
    if (o.integer && o.hi != "18446744073709551615") {
      bad.push_back(std::to_string(std::stoull(o.hi) + 1));
    } else if (!o.integer) {
      char above[64];
      std::snprintf(above, sizeof(above), "%.17g", std::stod(o.hi) * 2 + 1);
      bad.push_back(above);
    }
    const auto args_with = [&](const std::string& v) {
      std::vector<std::string> args = o.command;
      args.insert(o.name == "--threads" ? args.begin() : args.end(), o.name + "=" + v);
      return args;
    };
    for (const std::string& v : bad) {
      const std::vector<std::string> args = args_with(v);
      const CliRun r = run(args);
      EXPECT_EQ(r.rc, 2) << o.command[0] << " " << o.name << "=" << v << ": " << r.err;
      EXPECT_NE(r.err.find(o.name + ": "), std::string::npos) << o.name << "=" << v << ": "
                                                              << r.err;
      EXPECT_NE(r.err.find("(" + o.lo + " to " + o.hi + ")"), std::string::npos)
          << o.name << "=" << v << ": " << r.err;
    }
    // The bounds themselves pass the parser (the command then fails on the missing file: 1).
    for (const std::string& v : {o.lo, o.hi}) {
      const CliRun r = run(args_with(v));
      EXPECT_EQ(r.rc, 1) << o.command[0] << " " << o.name << "=" << v << ": " << r.err;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Cli, NumericOptionTest, ::testing::ValuesIn(numeric_options()),
                         [](const ::testing::TestParamInfo<NumericOption>& info) {
                           const NumericOption& o = info.param;
                           std::string name = (o.name == "--threads" ? std::string("global")
                                                                     : o.command[0]) +
                                              o.name;
                           for (char& c : name) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return name;
                         });

TEST_F(CliTest, HugeChunkSizeIsRefused) {
  // Before: "embedded 0 of 2 items (2 failed)" with an empty errors.jsonl.
  const CliRun r = run({"embed", "--model", kBridge, "--input",
                     kData + "/datasets/lesson_pairs.tsv", "--chunk-size",
                     "18446744073709551615", "-o", (dir_ / "out").string()});
  EXPECT_RUN(r, 2);
  EXPECT_NE(r.err.find("--chunk-size: 18446744073709551615 is out of range (1 to 1000000)"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(dir_ / "out"));
}

TEST_F(CliTest, HugeThreadCountIsRefused) {
  const CliRun r = run({"--threads", "100000", "inspect", kData + "/io/single.safetensors"});
  EXPECT_RUN(r, 2);
  EXPECT_NE(r.err.find("--threads: 100000 is out of range (0 to 1024)"), std::string::npos)
      << r.err;
}

}  // namespace
