// Every library entry point that reads an input file, fed every kind of special file (issue #18,
// item 4): a FIFO without a writer, a symlink to a FIFO, /dev/zero, a folder and a 6 GiB sparse
// file. Each case runs in a forked child under a 1 GiB address-space limit and a 10 s alarm
// (limited_child.h): a reader that blocks, reads without end or allocates the file's size fails
// the test instead of hanging it. A new reader belongs in kReaders below.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "data/manifest.h"
#include "hub/sha256.h"
#include "io/checkpoint.h"
#include "io/config.h"
#include "io/mapped_file.h"
#include "io/matrix.h"
#include "limited_child.h"
#include "models/bert/sentence.h"
#include "text/tokenizer.h"
#include "vision/decode.h"
#include "vision/processor.h"

namespace mmembed {
namespace {

namespace fs = std::filesystem;
using testing_support::error_in_limited_child;

struct Reader {
  const char* name;
  const char* file;  // the name it reads (extensions choose formats)
  std::function<void(const std::string&)> read;
  // What a 6 GiB sparse file gets: kLimit, refused from its size (a reader that reads the whole
  // file into memory); kFormat, an error from its header (a reader that maps it); kSkip, not
  // tried (hashing reads every byte by design, 6 GiB of zeros takes too long for a unit test).
  enum Sparse { kLimit, kFormat, kSkip } sparse = kLimit;
};

const std::vector<Reader> kReaders = {
    {"vision::read_image", "photo.png", [](const std::string& p) { vision::read_image(p); }},
    {"ImageProcessorOptions::from_json_file", "preprocessor_config.json",
     [](const std::string& p) { vision::ImageProcessorOptions::from_json_file(p); }},
    {"io::ConfigReader::from_file", "config.json",
     [](const std::string& p) { io::ConfigReader::from_file(p); }},
    {"io::open_checkpoint", "model.safetensors",
     [](const std::string& p) { io::open_checkpoint(p); }, Reader::kFormat},
    {"io::open_checkpoint (.bin)", "pytorch_model.bin",
     [](const std::string& p) { io::open_checkpoint(p); }, Reader::kFormat},
    {"io::open_checkpoint (index)", "model.safetensors.index.json",
     [](const std::string& p) { io::open_checkpoint(p); }},
    {"io::MappedFile::open", "data.bin", [](const std::string& p) { io::MappedFile::open(p); },
     Reader::kSkip},  // mapping a large file is what it is for
    {"io::read_matrix (.npy)", "emb.npy", [](const std::string& p) { io::read_matrix(p); },
     Reader::kFormat},
    {"io::read_matrix (.csv)", "emb.csv", [](const std::string& p) { io::read_matrix(p); }},
    {"io::read_matrix (.jsonl)", "emb.jsonl", [](const std::string& p) { io::read_matrix(p); }},
    {"text::load_tokenizer", "tokenizer.json",
     [](const std::string& p) { text::load_tokenizer(fs::path(p)); }},
    {"data::read_manifest", "pairs.csv", [](const std::string& p) { data::read_manifest(p); }},
    {"hub::sha256_file_hex", "blob", [](const std::string& p) { hub::sha256_file_hex(p); },
     Reader::kSkip},
};

struct Kind {
  const char* name;
  const char* expected;  // in the message; "" for any mmembed::Error naming the file
};

const std::vector<Kind> kKinds = {
    {"fifo", "is a FIFO, expected a regular file"},
    {"link_to_fifo", "is a FIFO, expected a regular file"},
    {"dev_zero", "is a character device, expected a regular file"},
    {"folder", "is a directory"},
    {"sparse_6g", ""},
};

class SpecialFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "mmembed-special.XXXXXX").string();
    root_ = ::mkdtemp(tmpl.data());
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  // `file` made as `kind` in a folder of its own.
  std::string make(const Kind& kind, const std::string& file) {
    const fs::path dir = fs::path(root_) / kind.name / file;
    fs::create_directories(dir);
    const std::string p = (dir / file).string();
    const std::string k = kind.name;
    if (k == "fifo") {
      EXPECT_EQ(::mkfifo(p.c_str(), 0600), 0);
    } else if (k == "link_to_fifo") {
      EXPECT_EQ(::mkfifo((p + ".fifo").c_str(), 0600), 0);
      fs::create_symlink(p + ".fifo", p);
    } else if (k == "dev_zero") {
      fs::create_symlink("/dev/zero", p);
    } else if (k == "folder") {
      fs::create_directory(p);
    } else {
      const int fd = ::open(p.c_str(), O_WRONLY | O_CREAT, 0600);
      EXPECT_GE(fd, 0);
      EXPECT_EQ(::write(fd, "\x89PNG\r\n\x1a\n", 8), 8);
      EXPECT_EQ(::ftruncate(fd, off_t{6} << 30), 0);
      ::close(fd);
    }
    return p;
  }
  std::string root_;
};

TEST_F(SpecialFiles, EveryReaderRefusesEveryKindByName) {
  for (const Reader& r : kReaders) {
    for (const Kind& kind : kKinds) {
      const bool sparse = std::string(kind.name) == "sparse_6g";
      if (sparse && r.sparse == Reader::kSkip) continue;
      const std::string path = make(kind, r.file);
      const std::string what = error_in_limited_child([&] { r.read(path); });
      SCOPED_TRACE(std::string(r.name) + " on " + kind.name + ": " + what);
      ASSERT_FALSE(what.empty());
      EXPECT_NE(what[0], '!');  // an mmembed::Error, not a hang, a kill or std::bad_alloc
      EXPECT_NE(what.find(r.file), std::string::npos);  // names the file
      // A folder given where a folder is also valid input (a model or tokenizer folder) gets
      // that reader's own message.
      const bool folder_is_input = std::string(kind.name) == "folder" &&
                                   (std::string(r.name).rfind("io::open_checkpoint", 0) == 0 ||
                                    std::string(r.name) == "text::load_tokenizer");
      if (*kind.expected != '\0' && !folder_is_input) {
        EXPECT_NE(what.find(kind.expected), std::string::npos);
      }
      if (sparse && r.sparse == Reader::kLimit) {
        EXPECT_NE(what.find("file is 6442450944 bytes, more than the"), std::string::npos);
      }
    }
  }
}

TEST_F(SpecialFiles, SentenceTransformersFolderFilesAreRefusedByName) {
  // modules.json and the module files are read by path inside a model folder.
  for (const char* file : {"modules.json", "sentence_bert_config.json", "1_Pooling/config.json"}) {
    for (const Kind& kind : kKinds) {
      if (std::string(kind.name) == "folder" || std::string(kind.name) == "sparse_6g") continue;
      std::string folder = file;
      for (char& c : folder) c = c == '/' ? '_' : c;
      const fs::path model = fs::path(root_) / "st" / kind.name / folder;
      fs::create_directories(model / "1_Pooling");
      std::ofstream(model / "modules.json")
          << R"([{"path": "", "type": "sentence_transformers.models.Transformer"},
                 {"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}])";
      std::ofstream(model / "sentence_bert_config.json") << R"({"max_seq_length": 8})";
      std::ofstream(model / "1_Pooling" / "config.json") << R"({"pooling_mode_mean_tokens": true})";
      const fs::path target = model / file;
      fs::remove(target);
      if (std::string(kind.name) == "dev_zero") {
        fs::create_symlink("/dev/zero", target);
      } else if (std::string(kind.name) == "link_to_fifo") {
        ASSERT_EQ(::mkfifo((target.string() + ".fifo").c_str(), 0600), 0);
        fs::create_symlink(target.string() + ".fifo", target);
      } else {
        ASSERT_EQ(::mkfifo(target.c_str(), 0600), 0);
      }
      const std::string what = error_in_limited_child(
          [&] { models::bert::SentenceConfig::from_dir(model.string()); });
      SCOPED_TRACE(std::string(file) + " as " + kind.name + ": " + what);
      EXPECT_NE(what.find(fs::path(file).filename().string()), std::string::npos);
      EXPECT_NE(what.find(std::string(kind.name) == "dev_zero" ? "is a character device"
                                                               : "is a FIFO"),
                std::string::npos);
    }
  }
}

}  // namespace
}  // namespace mmembed
