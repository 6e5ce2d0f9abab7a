// core/output_file.h: each kind of output path (issue #18): new and regular files replaced
// atomically with the right mode, links written through, FIFOs and devices written in place and
// never replaced, folders and dangling links refused, write errors reported, temporaries never
// left behind.
#include "core/output_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "mmembed/error.h"
#include "test_support.h"

namespace mmembed {
namespace {

namespace fs = std::filesystem;
using testing_support::error_of;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class OutputFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    dir_ = fs::temp_directory_path() /
           ("mmembed-output-file-" + std::to_string(::getpid()) + "-" + test);
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  // Names in dir_ other than `keep`: temporaries left behind show up here.
  std::vector<std::string> others(const std::vector<std::string>& keep) const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) {
      const std::string name = e.path().filename().string();
      if (std::find(keep.begin(), keep.end(), name) == keep.end()) out.push_back(name);
    }
    return out;
  }
  fs::path dir_;
};

TEST_F(OutputFileTest, NewFileHasModeFromUmask) {
  const mode_t old = ::umask(027);
  const fs::path p = dir_ / "new.txt";
  write_output_file(p.string(), "hello");
  ::umask(old);
  EXPECT_EQ(slurp(p), "hello");
  struct stat st {};
  ASSERT_EQ(::stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);  // 0666 less the umask, as a shell's `>` makes it
  EXPECT_TRUE(others({"new.txt"}).empty());
}

TEST_F(OutputFileTest, RegularFileIsReplacedAndKeepsItsMode) {
  const fs::path p = dir_ / "old.txt";
  std::ofstream(p) << "old contents that are longer";
  ASSERT_EQ(::chmod(p.c_str(), 0600), 0);
  struct stat before {};
  ASSERT_EQ(::stat(p.c_str(), &before), 0);
  EXPECT_EQ(output_kind(p.string()), OutputKind::kFile);
  write_output_file(p.string(), "new");
  EXPECT_EQ(slurp(p), "new");
  struct stat after {};
  ASSERT_EQ(::stat(p.c_str(), &after), 0);
  EXPECT_EQ(after.st_mode & 07777, 0600u);
  EXPECT_NE(after.st_ino, before.st_ino);  // a new file renamed over the old one
  EXPECT_TRUE(others({"old.txt"}).empty());
}

TEST_F(OutputFileTest, UncommittedFileLeavesTargetAndNoTemporary) {
  const fs::path p = dir_ / "keep.txt";
  std::ofstream(p) << "keep me";
  {
    OutputFile f = OutputFile::open(p.string());
    f.write("half of it");
    EXPECT_EQ(others({"keep.txt"}).size(), 1u);  // the temporary, beside the target
  }  // destroyed without commit(), as when an exception unwinds
  EXPECT_EQ(slurp(p), "keep me");
  EXPECT_TRUE(others({"keep.txt"}).empty());
}

TEST_F(OutputFileTest, SymlinkIsWrittenThroughAndStaysALink) {
  const fs::path target = dir_ / "target.txt";
  const fs::path link = dir_ / "link.txt";
  std::ofstream(target) << "old";
  fs::create_symlink(target, link);
  write_output_file(link.string(), "through the link");
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_EQ(slurp(target), "through the link");
  EXPECT_TRUE(others({"target.txt", "link.txt"}).empty());
}

TEST_F(OutputFileTest, DanglingSymlinkIsRefused) {
  const fs::path link = dir_ / "dangling";
  fs::create_symlink(dir_ / "nowhere" / "x", link);
  const std::string e = error_of<IoError>([&] { write_output_file(link.string(), "x"); });
  EXPECT_NE(e.find("dangling: a symbolic link to a missing file"), std::string::npos) << e;
  EXPECT_FALSE(fs::exists(dir_ / "nowhere"));
}

TEST_F(OutputFileTest, FolderIsRefusedAndUntouched) {
  const fs::path d = dir_ / "sub";
  fs::create_directories(d);
  const std::string e = error_of<IoError>([&] { write_output_file(d.string(), "x"); });
  EXPECT_NE(e.find("sub: is a folder"), std::string::npos) << e;
  EXPECT_TRUE(fs::is_directory(d));
  EXPECT_TRUE(fs::is_empty(d));
  EXPECT_TRUE(others({"sub"}).empty());
}

// The path is quoted escaped, as InputFile quotes inputs: no control byte of it in the message.
TEST_F(OutputFileTest, PathsAreEscapedInMessages) {
  const fs::path d = dir_ / "evil\x1b[2J\xff";
  fs::create_directories(d);
  const std::string e = error_of<IoError>([&] { write_output_file(d.string(), "x"); });
  EXPECT_NE(e.find("evil\\x1b[2J\\xff: is a folder"), std::string::npos) << e;
  EXPECT_EQ(e.find_first_of("\x1b\xff"), std::string::npos) << e;
  const std::string missing = (dir_ / "no\x07such" / "out.npy").string();
  const std::string m = error_of<IoError>([&] { write_output_file(missing, "x"); });
  EXPECT_NE(m.find("no\\x07such/out.npy: "), std::string::npos) << m;
  EXPECT_EQ(m.find('\x07'), std::string::npos) << m;
}

TEST_F(OutputFileTest, FifoIsWrittenInPlace) {
  const fs::path p = dir_ / "fifo";
  ASSERT_EQ(::mkfifo(p.c_str(), 0600), 0);
  EXPECT_EQ(output_kind(p.string()), OutputKind::kStream);
  std::string got;
  std::thread reader([&] { got = slurp(p); });
  write_output_file(p.string(), "through the pipe\n");
  reader.join();
  EXPECT_EQ(got, "through the pipe\n");
  struct stat st {};
  ASSERT_EQ(::lstat(p.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));  // not replaced by a regular file
  EXPECT_TRUE(others({"fifo"}).empty());
}

TEST_F(OutputFileTest, DevNullIsWrittenInPlace) {
  EXPECT_EQ(output_kind("/dev/null"), OutputKind::kStream);
  write_output_file("/dev/null", "discarded");
  struct stat st {};
  ASSERT_EQ(::lstat("/dev/null", &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
}

TEST_F(OutputFileTest, DevFullReportsTheWriteError) {
  if (!fs::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  const std::string e = error_of<IoError>([] { write_output_file("/dev/full", "x"); });
  EXPECT_NE(e.find("/dev/full: cannot write (No space left on device)"), std::string::npos) << e;
  struct stat st {};
  ASSERT_EQ(::lstat("/dev/full", &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));  // still the device
}

TEST_F(OutputFileTest, StdoutOnlyWhereAllowed) {
  EXPECT_EQ(output_kind("-"), OutputKind::kStdout);
  const std::string e = error_of<InvalidArgument>([] { output_kind("-", false); });
  EXPECT_NE(e.find("cannot go to standard output"), std::string::npos) << e;
  EXPECT_FALSE(fs::exists("-"));
  EXPECT_EQ(output_name("-"), "standard output");
}

TEST_F(OutputFileTest, MissingFolderNamesThePath) {
  const fs::path p = dir_ / "no" / "such" / "out.txt";
  const std::string e = error_of<IoError>([&] { write_output_file(p.string(), "x"); });
  EXPECT_NE(e.find(p.string() + ": cannot write: cannot create a temporary file in its folder "
                                 "(No such file or directory)"),
            std::string::npos)
      << e;
}

TEST_F(OutputFileTest, LongNameGetsATemporaryWithinNameMax) {
  const fs::path p = dir_ / std::string(250, 'n');
  write_output_file(p.string(), "long");
  EXPECT_EQ(slurp(p), "long");
  EXPECT_TRUE(others({p.filename().string()}).empty());
}

TEST_F(OutputFileTest, LargeWriteInPieces) {
  const fs::path p = dir_ / "big.bin";
  std::string a(3'000'000, 'a'), b(1'000'001, 'b');
  OutputFile f = OutputFile::open(p.string());
  f.write(a);
  f.write(b.data(), b.size());
  f.write(nullptr, 0);
  f.commit();
  EXPECT_EQ(slurp(p), a + b);
}

}  // namespace
}  // namespace mmembed
