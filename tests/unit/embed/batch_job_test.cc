// The resumable batch job (embed/batch_job.h): outputs, per-item failures, resume after SIGKILL,
// independence from batch and chunk sizes, refusing to mix jobs.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "embed/batch_job.h"
#include "io/matrix.h"
#include "mmembed/embedder.h"
#include "mmembed/error.h"
#include "test_support.h"

namespace mmembed::embed {
namespace {

using testing_support::error_of;

namespace fs = std::filesystem;

const std::string kData = MMEMBED_TEST_DATA_DIR;
const std::string kModel = kData + "/models/bridgetower-large-tiny";

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<nlohmann::json> read_jsonl(const fs::path& p) {
  std::vector<nlohmann::json> out;
  std::ifstream in(p);
  std::string line;
  while (std::getline(in, line)) out.push_back(nlohmann::json::parse(line));
  return out;
}

class BatchJob : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("mmembed_batch_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    // A truncated JPEG: the header is fine, the data stops.
    const std::string jpeg = slurp(kData + "/images/cat_landscape.jpg");
    std::ofstream(dir_ / "truncated.jpg", std::ios::binary) << jpeg.substr(0, 600);
    const std::vector<std::string> images = {"cat_landscape.jpg", "motorcycle_left.jpg",
                                             "motorcycle_portrait.jpg"};
    const std::vector<std::string> captions = {"a cat on a laptop", "a motorcycle near livestock",
                                               "a motorcycle in a garage"};
    for (int i = 0; i < 13; ++i) {
      BatchItem it;
      it.id = "item-" + std::to_string(i);
      it.image = kData + "/images/" + images[i % 3];
      it.text = captions[i % 3] + " number " + std::to_string(i);
      it.label = i % 3 == 0 ? "cat" : "motorcycle";
      items_.push_back(it);
    }
    items_[4].image = (dir_ / "truncated.jpg").string();
    items_[7].image = (dir_ / "missing.jpg").string();
    items_[9].text = "  ";
  }
  void TearDown() override { fs::remove_all(dir_); }

  static Embedder load(std::size_t batch) {
    EmbedderOptions o;
    o.batch_size = batch;
    o.threads = 1;
    return Embedder::load(kModel, o);
  }
  BatchJobOptions job(const fs::path& out, std::size_t chunk) const {
    BatchJobOptions o;
    o.kind = InputKind::kPair;
    o.out_dir = out.string();
    o.chunk_size = chunk;
    o.version = "test";
    return o;
  }

  fs::path dir_;
  std::vector<BatchItem> items_;
};

TEST_F(BatchJob, KilledRunResumesAndEqualsAnUninterruptedRun) {
  const fs::path out = dir_ / "out";
  // The child is killed by SIGKILL right after committing its second chunk (fork before this
  // process starts any compute threads).
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    BatchJobOptions o = job(out, 4);
    o.kill_after_chunks = 2;
    try {
      run_batch_job(load(2), items_, o);
    } catch (...) {
      ::_exit(3);
    }
    ::_exit(4);  // not killed: the hook did not fire
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exit status " << WEXITSTATUS(status);
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
  // Killed between chunks: nothing final exists, two chunks are committed.
  for (const char* f : {"run.json", "embeddings.npy", "items.jsonl", "errors.jsonl"})
    EXPECT_FALSE(fs::exists(out / f)) << f;
  EXPECT_TRUE(fs::exists(out / ".mmembed-partial/chunk-000001.jsonl"));
  EXPECT_FALSE(fs::exists(out / ".mmembed-partial/chunk-000002.jsonl"));

  const BatchJobResult resumed = run_batch_job(load(2), items_, job(out, 4));
  EXPECT_EQ(resumed.chunks, 4u);
  EXPECT_EQ(resumed.resumed_chunks, 2u);
  EXPECT_EQ(resumed.embedded, 10u);
  EXPECT_EQ(resumed.failed, 3u);
  EXPECT_FALSE(fs::exists(out / ".mmembed-partial"));

  // The same job, uninterrupted, with other batch and chunk sizes.
  const fs::path clean = dir_ / "clean";
  const BatchJobResult r = run_batch_job(load(5), items_, job(clean, 100));
  EXPECT_EQ(r.resumed_chunks, 0u);
  EXPECT_EQ(r.embedded, 10u);
  const io::Matrix a = io::read_matrix((out / "embeddings.npy").string());
  const io::Matrix b = io::read_matrix((clean / "embeddings.npy").string());
  ASSERT_EQ(a.rows, 10);
  ASSERT_EQ(b.rows, 10);
  ASSERT_EQ(a.cols, 16);
  for (std::size_t i = 0; i < a.data.size(); ++i) EXPECT_NEAR(a.data[i], b.data[i], 1e-6) << i;
  EXPECT_EQ(slurp(out / "items.jsonl"), slurp(clean / "items.jsonl"));
  EXPECT_EQ(slurp(out / "errors.jsonl"), slurp(clean / "errors.jsonl"));

  // Row r of embeddings.npy is the joint embedding of the item items.jsonl names for row r.
  const Embedder direct = load(1);
  for (const auto& j : read_jsonl(out / "items.jsonl")) {
    const std::size_t m = j.at("manifest_row"), row = j.at("row");
    EXPECT_EQ(j.at("id"), items_[m].id);
    EXPECT_EQ(j.at("label"), items_[m].label);
    const std::vector<Image> im = {Image::read(items_[m].image)};
    const std::vector<std::string> tx = {items_[m].text};
    const Embeddings e = direct.embed_pairs(im, tx);
    for (std::size_t k = 0; k < e.dim; ++k)
      EXPECT_NEAR(a.data[row * a.cols + k], e.data[k], 1e-6) << "row " << row;
  }
}

TEST_F(BatchJob, BadItemsFailAloneWithTheirReason) {
  const fs::path out = dir_ / "out";
  const BatchJobResult r = run_batch_job(load(4), items_, job(out, 5));
  EXPECT_EQ(r.embedded, 10u);
  EXPECT_EQ(r.failed, 3u);
  const auto errors = read_jsonl(out / "errors.jsonl");
  ASSERT_EQ(errors.size(), 3u);
  EXPECT_EQ(errors[0].at("manifest_row"), 4);
  EXPECT_EQ(errors[0].at("id"), "item-4");
  EXPECT_NE(errors[0].at("error").get<std::string>().find("truncated.jpg"), std::string::npos)
      << errors[0];
  EXPECT_EQ(errors[1].at("manifest_row"), 7);
  EXPECT_NE(errors[1].at("error").get<std::string>().find("missing.jpg"), std::string::npos)
      << errors[1];
  EXPECT_EQ(errors[2].at("manifest_row"), 9);
  EXPECT_NE(errors[2].at("error").get<std::string>().find("empty text"), std::string::npos)
      << errors[2];
  const auto items = read_jsonl(out / "items.jsonl");
  ASSERT_EQ(items.size(), 10u);
  for (std::size_t i = 0; i < items.size(); ++i) EXPECT_EQ(items[i].at("row"), i);

  const auto run = nlohmann::json::parse(slurp(out / "run.json"));
  EXPECT_EQ(run.at("kind"), "pair");
  EXPECT_EQ(run.at("dim"), 16);
  EXPECT_EQ(run.at("dtype"), "float32");
  EXPECT_EQ(run.at("mmembed_version"), "test");
  EXPECT_EQ(run.at("counts").at("items"), 13);
  EXPECT_EQ(run.at("counts").at("embedded"), 10);
  EXPECT_EQ(run.at("counts").at("failed"), 3);
}

TEST_F(BatchJob, FinishedJobIsNotRerunAndOtherJobsAreRefused) {
  const fs::path out = dir_ / "out";
  run_batch_job(load(4), items_, job(out, 6));
  const auto before = fs::last_write_time(out / "embeddings.npy");
  const BatchJobResult again = run_batch_job(load(4), items_, job(out, 6));
  EXPECT_TRUE(again.already_complete);
  EXPECT_EQ(again.embedded, 10u);
  EXPECT_EQ(fs::last_write_time(out / "embeddings.npy"), before);

  BatchJobOptions texts = job(out, 6);
  texts.kind = InputKind::kText;
  try {
    run_batch_job(load(4), items_, texts);
    ADD_FAILURE() << "a different job over finished results must be refused";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("different job"), std::string::npos) << e.what();
  }
  texts.restart = true;
  const BatchJobResult r = run_batch_job(load(4), items_, texts);
  EXPECT_EQ(r.embedded, 12u);  // only the blank text fails now
  EXPECT_EQ(read_jsonl(out / "errors.jsonl").size(), 1u);
}

TEST_F(BatchJob, SecondJobOnTheSameFolderIsRefusedWhileTheFirstRuns) {
  const fs::path out = dir_ / "out";
  fs::create_directories(out);
  // Another process holds the folder's lock (a child that sleeps with it).
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const int fd = ::open((out / ".mmembed-lock").c_str(), O_RDWR | O_CREAT, 0644);
    if (fd < 0 || ::flock(fd, LOCK_EX) != 0) ::_exit(3);
    (void)!::write(ready[1], "x", 1);
    ::sleep(30);
    ::_exit(0);
  }
  char c;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  try {
    run_batch_job(load(4), items_, job(out, 4));
    ADD_FAILURE() << "a second job on a locked folder must be refused";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("another mmembed job"), std::string::npos) << e.what();
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  // The lock dies with its holder: the job runs now.
  EXPECT_EQ(run_batch_job(load(4), items_, job(out, 4)).embedded, 10u);
}

// Runs `o` in a child process killed by SIGKILL after `chunks` committed chunks: a partial run.
void run_killed(const Embedder& (*make)(), const std::vector<BatchItem>& items, BatchJobOptions o,
                int chunks) {
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    o.kill_after_chunks = chunks;
    try {
      run_batch_job(make(), items, o);
    } catch (...) {
      ::_exit(3);
    }
    ::_exit(4);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exit status " << WEXITSTATUS(status);
}

const fs::path& model_copy_dir() {
  static const fs::path dir = fs::temp_directory_path() /
                              ("mmembed_batch_model_" + std::to_string(::getpid()));
  return dir;
}
const Embedder& copied_model() {
  static const Embedder e = [] {
    EmbedderOptions o;
    o.batch_size = 2;
    o.threads = 1;
    return Embedder::load(model_copy_dir().string(), o);
  }();
  return e;
}

// Issue #18: the resume check covered the model's path and settings, not its contents: a rerun
// after the weights at that path changed silently appended another model's vectors to the
// committed ones. Partial and finished runs are refused naming the file (restart redoes them).
TEST_F(BatchJob, ChangedModelFilesAreRefusedNamingTheFile) {
  fs::remove_all(model_copy_dir());
  fs::copy(kModel, model_copy_dir(), fs::copy_options::recursive);
  const fs::path weights = model_copy_dir() / "model.safetensors";
  const fs::path out = dir_ / "out";
  run_killed(&copied_model, items_, job(out, 4), 1);
  ASSERT_TRUE(fs::exists(out / ".mmembed-partial/chunk-000000.jsonl"));
  fs::last_write_time(weights, fs::last_write_time(weights) + std::chrono::hours(1));
  try {
    run_batch_job(copied_model(), items_, job(out, 4));
    ADD_FAILURE() << "a partial run made with other weights must be refused";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("holds a partial run of this job made with other model "
                                         "files (model.safetensors was modified (same size, "
                                         "other modification time))"),
              std::string::npos) << e.what();
  }
  BatchJobOptions again = job(out, 4);
  again.restart = true;
  const BatchJobResult r = run_batch_job(copied_model(), items_, again);
  EXPECT_EQ(r.resumed_chunks, 0u);  // nothing of the other weights' run was kept
  EXPECT_EQ(r.embedded, 10u);
  EXPECT_TRUE(run_batch_job(copied_model(), items_, job(out, 4)).already_complete);

  // A finished job: a file that grew, and one that appeared, are named too.
  std::ofstream(weights, std::ios::app) << ' ';
  std::string msg;
  try {
    run_batch_job(copied_model(), items_, job(out, 4));
  } catch (const InvalidArgument& e) {
    msg = e.what();
  }
  EXPECT_NE(msg.find("holds the results of this job, but the model's files are not those it "
                     "was made with (model.safetensors changed size ("), std::string::npos) << msg;
  fs::resize_file(weights, fs::file_size(weights) - 1);
  std::ofstream(model_copy_dir() / "extra.txt") << "x";
  msg.clear();
  try {
    run_batch_job(copied_model(), items_, job(out, 4));
  } catch (const InvalidArgument& e) {
    msg = e.what();
  }
  EXPECT_NE(msg.find("extra.txt is new"), std::string::npos) << msg;
  fs::remove_all(model_copy_dir());
}

// The images' contents count as well: a committed chunk whose image changed since is embedded
// again (and says why), and its rows equal a fresh run's; a finished job whose images changed
// is refused.
TEST_F(BatchJob, ChangedImagesAreEmbeddedAgain) {
  std::vector<BatchItem> items = items_;
  for (int i = 0; i < 3; ++i) {  // own copies of the first chunk's images
    items[i].image = (dir_ / ("img" + std::to_string(i) + ".jpg")).string();
    fs::copy_file(items_[i].image, items[i].image);
  }
  const fs::path out = dir_ / "out";
  run_killed([]() -> const Embedder& {
    static const Embedder e = load(2);
    return e;
  }, items, job(out, 4), 1);
  ASSERT_TRUE(fs::exists(out / ".mmembed-partial/chunk-000000.jsonl"));
  // Item 1's image becomes the cat picture (another size and another time).
  fs::copy_file(kData + "/images/cat_landscape.jpg", items[1].image,
                fs::copy_options::overwrite_existing);
  const BatchJobResult r = run_batch_job(load(2), items, job(out, 4));
  EXPECT_EQ(r.resumed_chunks, 0u);
  EXPECT_EQ(r.redone_chunks, 1u);
  EXPECT_NE(r.redone_reason.find("the image of item 'item-1' (" + items[1].image +
                                 ") changed since chunk 0 was embedded"),
            std::string::npos) << r.redone_reason;
  const fs::path clean = dir_ / "clean";
  run_batch_job(load(2), items, job(clean, 100));
  const io::Matrix a = io::read_matrix((out / "embeddings.npy").string());
  const io::Matrix b = io::read_matrix((clean / "embeddings.npy").string());
  ASSERT_EQ(a.data.size(), b.data.size());
  for (std::size_t i = 0; i < a.data.size(); ++i) EXPECT_NEAR(a.data[i], b.data[i], 1e-6) << i;

  fs::copy_file(kData + "/images/motorcycle_portrait.jpg", items[1].image,
                fs::copy_options::overwrite_existing);
  try {
    run_batch_job(load(2), items, job(out, 4));
    ADD_FAILURE() << "finished results over changed images must be refused";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("holds the results of this job, but some of its "
                                         "images changed since"),
              std::string::npos) << e.what();
  }
}

// Issue #18: a string that is not UTF-8 made nlohmann throw type_error.316 while writing
// items.jsonl, which killed the job and left only the lock and the partial folder. Through the
// library (the CLI refuses such manifests up front) a text that is not UTF-8 fails alone, and
// other strings are written with U+FFFD.
TEST_F(BatchJob, InvalidUtf8FailsAloneOrIsReplaced) {
  std::vector<BatchItem> items(items_.begin(), items_.begin() + 4);
  items[1].text = "caf\xE9 on a table";
  items[2].id = "id-\xFF";
  items[3].label = "label-\xC3";
  const fs::path out = dir_ / "out";
  const BatchJobResult r = run_batch_job(load(2), items, job(out, 4));
  EXPECT_EQ(r.embedded, 3u);
  EXPECT_EQ(r.failed, 1u);
  const auto errors = read_jsonl(out / "errors.jsonl");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].at("manifest_row"), 1);
  EXPECT_EQ(errors[0].at("text"), "caf\xEF\xBF\xBD on a table");
  EXPECT_NE(errors[0].at("error").get<std::string>().find("text is not valid UTF-8"),
            std::string::npos) << errors[0];
  const auto ok = read_jsonl(out / "items.jsonl");
  ASSERT_EQ(ok.size(), 3u);
  EXPECT_EQ(ok[1].at("id"), "id-\xEF\xBF\xBD");
  EXPECT_EQ(ok[2].at("label"), "label-\xEF\xBF\xBD");
  EXPECT_TRUE(fs::exists(out / "run.json"));
}

// Issue #18: a chunk size of 2^64 - 1 wrapped the chunk count to 0 ("embedded 0 of 13 items").
TEST_F(BatchJob, ChunkSizeOutOfRangeIsRefusedBeforeAnyWork) {
  const Embedder e = load(4);
  for (std::size_t chunk : {std::size_t{0}, kMaxChunkSize + 1, SIZE_MAX}) {
    const std::string msg =
        error_of<InvalidArgument>([&] { run_batch_job(e, items_, job(dir_ / "out", chunk)); });
    EXPECT_NE(msg.find("chunk size " + std::to_string(chunk) + " is out of range (1 to 1000000)"),
              std::string::npos)
        << msg;
  }
  BatchJobOptions negative = job(dir_ / "out", 4);
  negative.max_image_pixels = -1;
  const std::string msg = error_of<InvalidArgument>([&] { run_batch_job(e, items_, negative); });
  EXPECT_NE(msg.find("max_image_pixels -1 is negative"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(dir_ / "out"));
  // The largest chunk size is one chunk holding every item.
  const BatchJobResult r = run_batch_job(e, items_, job(dir_ / "big", kMaxChunkSize));
  EXPECT_EQ(r.chunks, 1u);
  EXPECT_EQ(r.items, items_.size());
  EXPECT_EQ(r.embedded + r.failed, items_.size());
}

TEST_F(BatchJob, UnsupportedKindIsRefusedBeforeAnyWork) {
  const Embedder base = Embedder::load(kData + "/models/bridgetower-base-tiny");
  EXPECT_THROW(run_batch_job(base, items_, job(dir_ / "out", 4)), Unsupported);
  EXPECT_FALSE(fs::exists(dir_ / "out"));
}

}  // namespace
}  // namespace mmembed::embed
