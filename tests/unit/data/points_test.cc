// data::read_embedding_folder and data::read_labels: what travels with embedding rows between
// commands, and the refusals of files whose rows do not fit.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "data/points.h"
#include "io/matrix.h"
#include "mmembed/error.h"
#include "test_support.h"

namespace mmembed::data {
namespace {

namespace fs = std::filesystem;
using mmembed::testing_support::error_of;
using Strings = std::vector<std::string>;

class TempDir {
 public:
  TempDir() {
    static int n = 0;
    path_ = fs::temp_directory_path() /
            ("mmembed-pointstest-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string write(const std::string& name, const std::string& content) const {
    std::ofstream(path_ / name, std::ios::binary) << content;
    return (path_ / name).string();
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// A folder as `embed --input` writes it: three rows of dim 2.
void write_folder(const TempDir& d, const std::string& items) {
  const std::vector<float> m = {1, 2, 3, 4, 5, 6};
  io::write_npy((d.path() / "embeddings.npy").string(), m.data(), 3, 2);
  d.write("items.jsonl", items);
  d.write("run.json", "{}\n");
}

TEST(EmbeddingFolder, RowsCarryIdsLabelsTextsImages) {
  TempDir d;
  // Out of order lines: "row" decides; a numeric label is kept as JSON writes it.
  write_folder(d, "{\"id\":\"b\",\"row\":1,\"text\":\"two\",\"image\":\"/i/2.png\",\"label\":7}\n"
                  "{\"id\":\"a\",\"row\":0,\"text\":\"one, \\\"quoted\\\"\",\"label\":\"cat\"}\n"
                  "\n"
                  "{\"id\":\"c\",\"row\":2,\"text\":\"three\"}\n");
  ASSERT_TRUE(is_embedding_folder(d.path()));
  const EmbeddingFolder f = read_embedding_folder(d.path());
  EXPECT_EQ(f.matrix.rows, 3);
  EXPECT_EQ(f.matrix.cols, 2);
  EXPECT_EQ(f.points.ids, (Strings{"a", "b", "c"}));
  EXPECT_EQ(f.points.labels, (Strings{"cat", "7", ""}));
  EXPECT_EQ(f.points.texts, (Strings{"one, \"quoted\"", "two", "three"}));
  EXPECT_EQ(f.points.images, (Strings{"", "/i/2.png", ""}));
}

TEST(EmbeddingFolder, NoLabelsNoImagesGiveEmptyColumns) {
  TempDir d;
  write_folder(d, "{\"id\":\"a\",\"row\":0,\"text\":\"x\"}\n{\"id\":\"b\",\"row\":1,\"text\":\"y\"}\n"
                  "{\"row\":2,\"text\":\"z\"}\n");
  const EmbeddingFolder f = read_embedding_folder(d.path());
  EXPECT_TRUE(f.points.labels.empty());
  EXPECT_TRUE(f.points.images.empty());
  EXPECT_EQ(f.points.ids, (Strings{"a", "b", "2"}));  // no id: the row number
}

TEST(EmbeddingFolder, RowsThatDoNotFitAreRefused) {
  struct Case {
    const char* items;
    const char* message;
  } cases[] = {
      {"{\"row\":0}\n{\"row\":1}\n", "row 2 of embeddings.npy is not described"},
      {"{\"row\":0}\n{\"row\":0}\n{\"row\":1}\n", "line 2: row 0 is described twice"},
      {"{\"row\":0}\n{\"row\":1}\n{\"row\":3}\n", "line 3: row 3 but embeddings.npy has 3 rows"},
      {"{\"row\":0}\n[1]\n", "line 2: expected a JSON object"},
      {"{\"row\":0}\n{oops\n", "line 2: not JSON"},
      {"{\"row\":-1}\n", "line 1: \"row\" must be a non-negative integer"},
  };
  for (const Case& c : cases) {
    TempDir d;
    write_folder(d, c.items);
    const std::string msg = error_of<FormatError>([&] { read_embedding_folder(d.path()); });
    EXPECT_NE(msg.find(c.message), std::string::npos) << msg;
    EXPECT_NE(msg.find("items.jsonl"), std::string::npos) << msg;
  }
}

TEST(EmbeddingFolder, UnfinishedOrOtherFoldersAreRefused) {
  TempDir d;
  write_folder(d, "{\"row\":0}\n{\"row\":1}\n{\"row\":2}\n");
  fs::remove(d.path() / "run.json");
  fs::create_directory(d.path() / ".mmembed-partial");
  std::string msg = error_of<IoError>([&] { read_embedding_folder(d.path()); });
  EXPECT_NE(msg.find("has not finished"), std::string::npos) << msg;
  TempDir empty;
  EXPECT_FALSE(is_embedding_folder(empty.path()));
  msg = error_of<IoError>([&] { read_embedding_folder(empty.path()); });
  EXPECT_NE(msg.find("needs embeddings.npy and items.jsonl"), std::string::npos) << msg;
}

TEST(Labels, PlainJsonlCsvTsv) {
  TempDir d;
  EXPECT_EQ(read_labels(d.write("l.txt", "cat\r\ndog\n\nbird\n"), 4), (Strings{"cat", "dog", "", "bird"}));
  EXPECT_EQ(read_labels(d.write("l.jsonl", "{\"label\":\"cat\",\"k\":1}\n\n{\"label\":2,\"k\":2}\n"), 2),
            (Strings{"cat", "2"}));
  EXPECT_EQ(read_labels(d.path().string() + "/l.jsonl", 2, "k"), (Strings{"1", "2"}));
  EXPECT_EQ(read_labels(d.write("l.csv", "id,shape\n1,\"a, b\"\n2,c\n"), 2, "shape"),
            (Strings{"a, b", "c"}));
  EXPECT_EQ(read_labels(d.write("l.tsv", "shape\tid\nx\t1\ny\t2\n"), 2, "shape"), (Strings{"x", "y"}));
}

TEST(Labels, FilesThatDoNotFitAreRefusedWithTheReason) {
  TempDir d;
  std::string msg = error_of<InvalidArgument>([&] { read_labels(d.write("a.txt", "x\ny\n"), 3); });
  EXPECT_NE(msg.find("a.txt: 2 lines for 3 points"), std::string::npos) << msg;
  msg = error_of<FormatError>(
      [&] { read_labels(d.write("b.txt", "{\"label\":\"x\"}\n {\"label\":\"y\"} \n"), 2); });
  EXPECT_NE(msg.find("every line is a JSON object"), std::string::npos) << msg;
  msg = error_of<FormatError>([&] { read_labels(d.write("c.jsonl", "{\"a\":1}\n"), 1); });
  EXPECT_NE(msg.find("c.jsonl: line 1: no field \"label\""), std::string::npos) << msg;
  msg = error_of<FormatError>([&] { read_labels(d.write("d.jsonl", "{\"label\":[1]}\n"), 1); });
  EXPECT_NE(msg.find("is not a string or number"), std::string::npos) << msg;
  msg = error_of<FormatError>([&] { read_labels(d.write("e.csv", "id,x\n1,2\n"), 1); });
  EXPECT_NE(msg.find("e.csv: no column \"label\""), std::string::npos) << msg;
  msg = error_of<FormatError>([&] { read_labels(d.write("f.csv", "label,x\n1\n"), 1); });
  EXPECT_NE(msg.find("f.csv: line 2: 1 fields, expected 2"), std::string::npos) << msg;
  msg = error_of<InvalidArgument>([&] { read_labels(d.write("g.jsonl", "{\"label\":1}\n"), 2); });
  EXPECT_NE(msg.find("g.jsonl: 1 labels for 2 points"), std::string::npos) << msg;
  // A FIFO is refused, not waited on.
  const std::string fifo = (d.path() / "fifo.txt").string();
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_THROW(read_labels(fifo, 1), IoError);
}

}  // namespace
}  // namespace mmembed::data
