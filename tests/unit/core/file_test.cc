// read_input_file / InputFile (issue #18, item 4): only regular files are read, and no read is
// unbounded. Each special-file case runs in a forked child under an alarm and an address-space
// limit, so that a regression (a FIFO open that blocks, a read of /dev/zero that never ends)
// fails this test in seconds instead of hanging it or exhausting the machine's memory.
#include "core/file.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "limited_child.h"
#include "mmembed/error.h"

namespace mmembed {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "mmembed-file-test.XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string operator/(const std::string& name) const { return (fs::path(path_) / name).string(); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// An IoError's message from `f`, run in a child limited to 1 GiB and 10 s.
std::string io_error_in_child(const std::function<void()>& f) {
  return testing_support::error_in_limited_child(f);
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

TEST(InputFile, ReadsRegularFilesWhole) {
  TempDir t;
  write_file(t / "a.txt", std::string("hello\0world", 11));
  EXPECT_EQ(read_input_file(t / "a.txt", 100), std::string("hello\0world", 11));
  write_file(t / "empty", "");
  EXPECT_EQ(read_input_file(t / "empty", 0), "");
  // Larger than the first probe: the buffer grows past the size fstat reported.
  const std::string big(100000, 'x');
  write_file(t / "big", big);
  EXPECT_EQ(read_input_file(t / "big", big.size()), big);
}

TEST(InputFile, LimitIsExact) {
  TempDir t;
  write_file(t / "ten", "0123456789");
  EXPECT_EQ(read_input_file(t / "ten", 10), "0123456789");
  const std::string msg = io_error_in_child([&] { read_input_file(t / "ten", 9); });
  EXPECT_NE(msg.find("ten: file is 10 bytes, more than the 9 bytes limit"), std::string::npos)
      << msg;
}

TEST(InputFile, FilesThatReportNoSizeAreStillBounded) {
  // /proc files are regular files of size 0: read until the end, but never past the limit.
  EXPECT_NE(read_input_file("/proc/self/status", kMaxConfigFileBytes).find("Pid:"),
            std::string::npos);
  const std::string msg = io_error_in_child([] { read_input_file("/proc/self/status", 16); });
  EXPECT_NE(msg.find("/proc/self/status: file is more than 16 bytes"), std::string::npos) << msg;
}

TEST(InputFile, SpecialFilesAreRefusedByKind) {
  TempDir t;
  ASSERT_EQ(::mkfifo((t / "fifo").c_str(), 0600), 0);
  fs::create_symlink(t / "fifo", t / "link");
  fs::create_directory(t / "dir");
  struct Case {
    std::string path, expected;
  };
  for (const Case& c : {Case{t / "fifo", "fifo: is a FIFO, expected a regular file"},
                        Case{t / "link", "link: is a FIFO, expected a regular file"},
                        Case{"/dev/zero", "/dev/zero: is a character device"},
                        Case{"/dev/null", "/dev/null: is a character device"},
                        Case{t / "dir", "dir: is a directory, expected a regular file"},
                        Case{t / "missing", "missing: cannot open (No such file or directory)"}}) {
    const std::string msg = io_error_in_child([&] { read_input_file(c.path, kMaxImageFileBytes); });
    EXPECT_NE(msg.find(c.expected), std::string::npos) << c.path << " -> " << msg;
    const std::string open_msg = io_error_in_child([&] { InputFile::open(c.path); });
    EXPECT_NE(open_msg.find(c.expected), std::string::npos) << c.path << " -> " << open_msg;
  }
  EXPECT_EQ(special_file_kind(t / "fifo"), "is a FIFO");
  EXPECT_EQ(special_file_kind(t / "dir"), "is a directory");
  EXPECT_EQ(special_file_kind("/dev/zero"), "is a character device");
  EXPECT_EQ(special_file_kind("/proc/self/status"), "");
}

TEST(InputFile, HugeSparseFileIsRefusedFromItsSize) {
  TempDir t;
  const std::string path = t / "sparse.png";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, "\x89PNG\r\n\x1a\n", 8), 8);
  ASSERT_EQ(::ftruncate(fd, off_t{6} << 30), 0);  // 6 GiB, all but 8 bytes a hole
  ::close(fd);
  const std::string msg = io_error_in_child([&] { read_input_file(path, kMaxImageFileBytes); });
  EXPECT_NE(msg.find("sparse.png: file is 6442450944 bytes, more than the 256 MiB limit"),
            std::string::npos)
      << msg;
  // InputFile::open alone (the mmap readers) takes no memory for it.
  EXPECT_EQ(InputFile::open(path).size(), std::uint64_t{6} << 30);
}

TEST(EscapeForMessage, EscapesControlsAndInvalidUtf8KeepsValidText) {
  EXPECT_EQ(escape_for_message("plain/path.jpg"), "plain/path.jpg");
  EXPECT_EQ(escape_for_message("caf\xc3\xa9 \xe7\x8c\xab"), "caf\xc3\xa9 \xe7\x8c\xab");
  EXPECT_EQ(escape_for_message("a\nb\tc\x1b[31m"), "a\\x0ab\\x09c\\x1b[31m");
  EXPECT_EQ(escape_for_message("back\\slash"), "back\\x5cslash");
  EXPECT_EQ(escape_for_message("bad\xff\xfe"), "bad\\xff\\xfe");
  EXPECT_EQ(escape_for_message("overlong\xc0\xaf"), "overlong\\xc0\\xaf");
  EXPECT_EQ(escape_for_message("cut\xe7\x8c"), "cut\\xe7\\x8c");
  EXPECT_EQ(escape_for_message("surrogate\xed\xa0\x80"), "surrogate\\xed\\xa0\\x80");
  EXPECT_EQ(escape_for_message("c1\xc2\x85"), "c1\\xc2\\x85");  // U+0085 NEXT LINE
  EXPECT_EQ(escape_for_message(std::string("nul\0", 4)), "nul\\x00");
  EXPECT_EQ(escape_for_message("abcdef", 3), "abc...");
  EXPECT_EQ(escape_for_message("\xe7\x8c\xab\xe7\x8c\xab", 1), "\xe7\x8c\xab...");
}

TEST(PrintableMessage, KeepsLinesAndEscapesWithoutEscapingTwice) {
  // A message that quotes an already escaped field keeps its backslashes; its line breaks stay.
  EXPECT_EQ(printable_message("a.csv: 2 problems:\n  'x\\x1b' bad\n  y"),
            "a.csv: 2 problems:\n  'x\\x1b' bad\n  y");
  EXPECT_EQ(printable_message("raw \x1b[2J\r\t and \xff bytes, caf\xc3\xa9"),
            "raw \\x1b[2J\\x0d\\x09 and \\xff bytes, caf\xc3\xa9");
  const std::string long_message(5000, 'm');
  EXPECT_EQ(printable_message(long_message), long_message);  // never cut
}

TEST(EscapeForMessage, OutputIsAlwaysPrintableUtf8) {
  // Every byte value at every position: the result never holds a control byte or a byte that
  // starts an invalid sequence.
  for (int a = 0; a < 256; ++a) {
    for (int b = 0; b < 256; b += 17) {
      const std::string in{static_cast<char>(a), static_cast<char>(b), 'z'};
      const std::string out = escape_for_message(in);
      for (unsigned char c : out) EXPECT_FALSE(c < 0x20 || c == 0x7f) << a << "," << b;
      // Escaping the output again changes only its backslashes: nothing else in it is a
      // control character or invalid UTF-8.
      std::string backslashes_escaped;
      for (char c : out) {
        backslashes_escaped += c == '\\' ? std::string("\\x5c") : std::string(1, c);
      }
      EXPECT_EQ(escape_for_message(out), backslashes_escaped) << a << "," << b;
    }
  }
}

}  // namespace
}  // namespace mmembed
