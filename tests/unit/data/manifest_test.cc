// Manifests (JSONL, CSV with RFC 4180 quoting, TSV) and image folders, and their validation
// messages with line numbers. Expected values are written out by hand from RFC 4180's rules.
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "data/manifest.h"
#include "mmembed/error.h"
#include "test_support.h"

namespace mmembed::data {
namespace {

namespace fs = std::filesystem;
using mmembed::testing_support::error_of;

const fs::path kImages = fs::path(MMEMBED_TEST_DATA_DIR) / "images";

class TempDir {
 public:
  TempDir() {
    static int n = 0;
    path_ = fs::temp_directory_path() /
            ("mmembed-datatest-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  fs::path write(const std::string& name, const std::string& content) const {
    fs::path p = path_ / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << content;
    return p;
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

TEST(Delimited, Rfc4180Quoting) {
  auto recs = parse_delimited(
      "id,text\r\n1,\"a, b\"\r\n2,\"say \"\"hi\"\"\"\n3,\"two\nlines\"\n4,\n", ',', "t.csv");
  ASSERT_EQ(recs.size(), 5u);
  EXPECT_EQ(recs[1].fields, (std::vector<std::string>{"1", "a, b"}));
  EXPECT_EQ(recs[2].fields, (std::vector<std::string>{"2", "say \"hi\""}));
  EXPECT_EQ(recs[3].fields, (std::vector<std::string>{"3", "two\nlines"}));
  EXPECT_EQ(recs[3].line, 4u);
  EXPECT_EQ(recs[4].fields, (std::vector<std::string>{"4", ""}));
  EXPECT_EQ(recs[4].line, 6u);  // the quoted newline counted
  std::string msg = error_of<FormatError>([] { parse_delimited("a\n\"open,\n", ',', "bad.csv"); });
  EXPECT_NE(msg.find("bad.csv:2: unterminated quoted field"), std::string::npos) << msg;
  msg = error_of<FormatError>([] { parse_delimited("a\n\"x\"y\n", ',', "bad.csv"); });
  EXPECT_NE(msg.find("bad.csv:2"), std::string::npos) << msg;
}

TEST(Manifest, ReadsCsvTsvAndJsonlAlike) {
  TempDir t;
  fs::copy_file(kImages / "gray.jpg", t.path() / "gray.jpg");
  auto csv = read_manifest(t.write("m.csv",
      "\xEF\xBB\xBFid,image,Caption,label\n"
      "a,http://example.org/a.jpg,\"A motorcycle, parked\",vehicle\n"
      "b,gray.jpg,a gray picture,other\n"));
  auto tsv = read_manifest(t.write("m.tsv",
      "label\tid\timage\ttext\n"
      "vehicle\ta\thttp://example.org/a.jpg\tA motorcycle, parked\n"
      "other\tb\tgray.jpg\ta gray picture\n"));
  auto jsonl = read_manifest(t.write("m.jsonl",
      "{\"id\": \"a\", \"image\": \"http://example.org/a.jpg\", \"text\": \"A motorcycle, parked\", \"label\": \"vehicle\"}\n"
      "\n"
      "{\"id\": \"b\", \"image\": \"gray.jpg\", \"text\": \"a gray picture\", \"label\": \"other\"}\n"));
  for (const Manifest* m : {&csv, &tsv, &jsonl}) {
    ASSERT_EQ(m->items.size(), 2u);
    EXPECT_TRUE(m->has_label);
    EXPECT_EQ(m->items[0].id, "a");
    EXPECT_EQ(m->items[0].image, "http://example.org/a.jpg");
    EXPECT_EQ(m->items[0].text, "A motorcycle, parked");
    EXPECT_EQ(m->items[0].label, "vehicle");
    EXPECT_EQ(m->items[1].image, (t.path() / "gray.jpg").string());  // relative to the manifest
    EXPECT_EQ(m->items[1].label, "other");
  }
  EXPECT_EQ(jsonl.items[1].line, 3u);
  EXPECT_EQ(csv.items[1].line, 3u);
}

TEST(Manifest, ValidationNamesLinesAndProblems) {
  TempDir t;
  std::string msg = error_of<FormatError>([&] {
    read_manifest(t.write("a.csv",
                          "id,image,text\n"
                          "x,http://h/1.jpg,one\n"
                          "y,http://h/2.jpg,\n"
                          "x,http://h/3.jpg,three\n"
                          "z,missing.jpg,four\n"
                          ",http://h/5.jpg,five\n"));
  });
  EXPECT_NE(msg.find("4 problems"), std::string::npos) << msg;
  EXPECT_NE(msg.find("a.csv:3: empty caption (text) for id 'y'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("a.csv:4: duplicate id 'x' (first on line 2)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("a.csv:5: image 'missing.jpg' not found"), std::string::npos) << msg;
  EXPECT_NE(msg.find("a.csv:6: empty id"), std::string::npos) << msg;

  msg = error_of<FormatError>([&] { read_manifest(t.write("b.csv", "id,image\nx,http://h/1.jpg\n")); });
  EXPECT_NE(msg.find("missing column 'text'"), std::string::npos) << msg;
  ManifestOptions images_only;
  images_only.need_text = false;
  EXPECT_EQ(read_manifest(t.path() / "b.csv", images_only).items.size(), 1u);

  msg = error_of<FormatError>([&] { read_manifest(t.write("c.csv", "id,image,text\nx,http://h/1.jpg\n")); });
  EXPECT_NE(msg.find("c.csv:2: expected 3 fields, found 2"), std::string::npos) << msg;

  msg = error_of<FormatError>([&] {
    read_manifest(t.write("d.jsonl", "{\"id\": \"a\", \"image\": \"http://h/1.jpg\", \"text\": \"t\"}\n"
                                     "{\"id\": \"b\", \"text\": \"t\"}\n"
                                     "not json\n"));
  });
  EXPECT_NE(msg.find("d.jsonl:2: missing field 'image'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("d.jsonl:3: not valid JSON"), std::string::npos) << msg;

  msg = error_of<InvalidArgument>([&] { read_manifest(t.write("e.xml", "x")); });
  EXPECT_NE(msg.find("unknown manifest format"), std::string::npos) << msg;
  // A .txt holds texts only: as pairs (images needed) it is refused with the way out.
  msg = error_of<FormatError>([&] { read_manifest(t.write("e.txt", "x")); });
  EXPECT_NE(msg.find("a text file holds texts only"), std::string::npos) << msg;
  EXPECT_THROW(read_manifest(t.path() / "nope.csv"), IoError);
}

// Issue #20: texts one per line (ids = line numbers, blank lines skipped); manifests without an
// id column numbered by row; JSONL with ids on some lines only is refused.
TEST(Manifest, TextLinesAndNumberedRows) {
  TempDir t;
  ManifestOptions texts;
  texts.need_image = false;
  Manifest m = read_manifest(t.write("s.txt", "\xEF\xBB\xBFone\r\n\n  \ntwo\n"), texts);
  ASSERT_EQ(m.items.size(), 2u);
  EXPECT_TRUE(m.ids_numbered);
  EXPECT_EQ(m.items[0].id, "1");
  EXPECT_EQ(m.items[0].text, "one");
  EXPECT_EQ(m.items[1].id, "4");
  EXPECT_EQ(m.items[1].text, "two");

  m = read_manifest(t.write("n.tsv", "text\tlabel\nhello\ta\n\nworld\tb\n"), texts);
  ASSERT_EQ(m.items.size(), 2u);
  EXPECT_TRUE(m.ids_numbered);
  EXPECT_EQ(m.items[1].id, "2");
  EXPECT_EQ(m.items[1].label, "b");

  m = read_manifest(t.write("n.jsonl", "{\"text\": \"a\"}\n{\"text\": \"b\"}\n"), texts);
  EXPECT_TRUE(m.ids_numbered);
  EXPECT_EQ(m.items[1].id, "2");
  const std::string msg = error_of<FormatError>([&] {
    read_manifest(t.write("m.jsonl", "{\"id\": \"x\", \"text\": \"a\"}\n{\"text\": \"b\"}\n"),
                  texts);
  });
  EXPECT_NE(msg.find("m.jsonl:2: missing field 'id'"), std::string::npos) << msg;

  m = read_manifest(t.write("i.csv", "id,text\nq,z\n"), texts);
  EXPECT_FALSE(m.ids_numbered);
}

TEST(Manifest, SpecialFilesAreNamedNotHung) {
  // Issue #18: a FIFO as the manifest, or as an image it names, is refused by kind (path
  // checks on); raw control bytes of a field are escaped in the message.
  TempDir t;
  ASSERT_EQ(::mkfifo((t.path() / "pipe.jpg").c_str(), 0600), 0);
  ASSERT_EQ(::mkfifo((t.path() / "pipe.csv").c_str(), 0600), 0);
  fs::create_directory(t.path() / "folder.jpg");
  const std::string msg = error_of<FormatError>([&] {
    read_manifest(t.write("m.csv", "id,image,text\n"
                                   "a,pipe.jpg,one\n"
                                   "b,folder.jpg,two\n"
                                   "c,\x1b[31mred.jpg,three\n"));
  });
  EXPECT_NE(msg.find("m.csv:2: image 'pipe.jpg' is a FIFO, expected a regular file"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("m.csv:3: image 'folder.jpg' is a directory"), std::string::npos) << msg;
  EXPECT_NE(msg.find("m.csv:4: image '\\x1b[31mred.jpg' not found"), std::string::npos) << msg;
  EXPECT_NE(error_of<IoError>([&] { read_manifest(t.path() / "pipe.csv"); })
                .find("pipe.csv: is a FIFO, expected a regular file"),
            std::string::npos);
}

TEST(Manifest, InvalidUtf8IsRefusedByLineAndField) {
  // Issue #18: an id with a 0xff byte ended `embed --input` with nlohmann's "invalid UTF-8 byte
  // at index 3: 0xFF" when the job wrote it to JSON; it is now a manifest problem with its line.
  TempDir t;
  const std::string msg = error_of<FormatError>([&] {
    read_manifest(t.write("u.tsv", "id\timage\ttext\tlabel\n"
                                   "ok\thttp://h/1.jpg\tcaf\xc3\xa9\tcat\n"
                                   "bad\xff\thttp://h/2.jpg\tb\tcat\n"
                                   "c\thttp://h/\xc0\xaf.jpg\tc\tcat\n"
                                   "d\thttp://h/4.jpg\t\xed\xa0\x80\tcat\xfe\n"));
  });
  // Refused up front, every bad line named with the byte and its column, whichever field holds
  // it (the id, the image, the text and label of one line).
  EXPECT_NE(msg.find("(3 lines not valid UTF-8"), std::string::npos) << msg;
  EXPECT_NE(msg.find("u.tsv:3: not valid UTF-8 (byte 0xFF at column 4)"), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("u.tsv:4: not valid UTF-8 (byte 0xC0 at column 12)"), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("u.tsv:5: not valid UTF-8 (byte 0xED at column 18)"), std::string::npos)
      << msg;
  EXPECT_EQ(msg.find('\xff'), std::string::npos) << msg;  // no raw byte in the message
}

TEST(ImageFolder, SidecarsCaptionsFileAndLabels) {
  TempDir t;
  fs::create_directories(t.path() / "cats");
  fs::create_directories(t.path() / "cars");
  fs::copy_file(kImages / "cat.webp", t.path() / "cats" / "c1.webp");
  fs::copy_file(kImages / "gray.jpg", t.path() / "cars" / "m1.jpg");
  t.write("cats/c1.txt", "  a cat \n");
  t.write("cars/m1.txt", "a motorcycle");
  Manifest m = read_image_folder(t.path());
  ASSERT_EQ(m.items.size(), 2u);
  EXPECT_EQ(m.items[0].id, "cars/m1");
  EXPECT_EQ(m.items[0].label, "cars");
  EXPECT_EQ(m.items[0].text, "a motorcycle");
  EXPECT_EQ(m.items[1].text, "a cat");
  EXPECT_EQ(m.items[1].image, (t.path() / "cats" / "c1.webp").string());

  // A captions file wins over sidecars; a missing caption is an error naming the image.
  t.write("captions.tsv", "image\ttext\ncats/c1.webp\tcat from the captions file\n");
  fs::remove(t.path() / "cars" / "m1.txt");
  std::string msg = error_of<FormatError>([&] { read_image_folder(t.path()); });
  EXPECT_NE(msg.find("no caption for cars/m1.jpg"), std::string::npos) << msg;
  t.write("cars/m1.txt", "a motorcycle");
  m = read_dataset(t.path());
  EXPECT_EQ(m.items[1].text, "cat from the captions file");
}

// Issue #18: a TSV with a caption in Latin-1 (0xE9) got through validation and the batch job
// then died on nlohmann's type_error.316 when writing items.jsonl. Every format refuses the
// manifest up front, naming file:line, the byte and its column; overlong forms, surrogates and
// truncated sequences count as malformed too, and valid multi-byte text passes.
TEST(Manifest, InvalidUtf8IsRefusedWithFileAndLineInEveryFormat) {
  TempDir t;
  fs::copy_file(kImages / "gray.jpg", t.path() / "gray.jpg");
  const std::string bad = "caf\xE9";  // Latin-1 e-acute
  const std::vector<std::pair<std::string, std::string>> files = {
      {"m.tsv", "id\timage\ttext\na\tgray.jpg\tok\nb\tgray.jpg\t" + bad + "\n"},
      {"m.csv", "id,image,text\na,gray.jpg,ok\nb,gray.jpg,\"" + bad + "\"\n"},
      {"m.jsonl", "{\"id\": \"a\", \"image\": \"gray.jpg\", \"text\": \"ok\"}\n"
                  "{\"id\": \"b\", \"image\": \"gray.jpg\", \"text\": \"" + bad + "\"}\n"},
  };
  for (const auto& [name, content] : files) {
    const fs::path p = t.write(name, content);
    const std::string msg = error_of<FormatError>([&] { read_manifest(p); });
    const std::string line = name == "m.jsonl" ? ":2:" : ":3:";  // JSONL has no header line
    EXPECT_NE(msg.find(p.string() + line + " not valid UTF-8 (byte 0xE9 at column "),
              std::string::npos) << msg;
    EXPECT_NE(msg.find("(1 line not valid UTF-8"), std::string::npos) << msg;
  }
  for (const std::string& seq : {std::string("\xC0\xAF"), std::string("\xED\xA0\x80"),
                                 std::string("\xF4\x90\x80\x80"), std::string("\xE2\x82"),
                                 std::string("\x80"), std::string("\xFF")}) {
    const fs::path p = t.write("s.tsv", "id\timage\ttext\na\tgray.jpg\tx" + seq + "y\n");
    const std::string msg = error_of<FormatError>([&] { read_manifest(p); });
    EXPECT_NE(msg.find("s.tsv:2: not valid UTF-8 (byte 0x"), std::string::npos) << msg;
    EXPECT_NE(msg.find(" at column 13)"), std::string::npos) << msg;
  }
  const Manifest ok = read_manifest(
      t.write("u.tsv", "id\timage\ttext\n\xE2\x9C\x93\tgray.jpg\tcaf\xC3\xA9 \xF0\x9F\x90\xB1\n"));
  EXPECT_EQ(ok.items[0].text, "caf\xC3\xA9 \xF0\x9F\x90\xB1");

  // Image folders: a sidecar caption that is not UTF-8 is named with its file.
  TempDir f;
  fs::copy_file(kImages / "gray.jpg", f.path() / "g.jpg");
  f.write("g.txt", bad);
  const std::string msg = error_of<FormatError>([&] { read_image_folder(f.path()); });
  EXPECT_NE(msg.find("caption file " + (f.path() / "g.txt").string() +
                     ": not valid UTF-8 (byte 0xE9 at offset 3)"),
            std::string::npos) << msg;

  // A file name that is not UTF-8 is quoted escaped in the message that says so (it was put in
  // raw: the invalid byte the message is about reached the terminal of a library caller).
  TempDir n;
  fs::copy_file(kImages / "gray.jpg", n.path() / "bad\xff\x1b.jpg");
  n.write("bad\xff\x1b.txt", "a caption");
  const std::string named = error_of<FormatError>([&] { read_image_folder(n.path()); });
  EXPECT_NE(named.find("bad\\xff\\x1b.jpg is not valid UTF-8"), std::string::npos) << named;
  EXPECT_EQ(named.find_first_of("\xff\x1b"), std::string::npos) << named;
  // The same for a manifest whose own name is not UTF-8.
  const fs::path latin = t.write("m\xe9.tsv", "id\timage\ttext\na\tgray.jpg\t" + bad + "\n");
  const std::string m = error_of<FormatError>([&] { read_manifest(latin); });
  EXPECT_NE(m.find("m\\xe9.tsv:2: not valid UTF-8"), std::string::npos) << m;
  EXPECT_EQ(m.find('\xe9'), std::string::npos) << m;
}

TEST(Manifest, WritesJsonlThatReadsBack) {
  TempDir t;
  std::vector<Item> items = {{"a", "http://h/a.jpg", "quote \" and\nnewline", "l", 0},
                             {"b", "http://h/b.jpg", "caf\xC3\xA9", "", 0}};
  write_manifest_jsonl(t.path() / "out.jsonl", items, /*with_label=*/true);
  Manifest m = read_manifest(t.path() / "out.jsonl");
  ASSERT_EQ(m.items.size(), 2u);
  EXPECT_EQ(m.items[0].text, "quote \" and\nnewline");
  EXPECT_EQ(m.items[1].text, "caf\xC3\xA9");
  EXPECT_EQ(m.items[0].label, "l");
  for (const auto& e : fs::directory_iterator(t.path())) EXPECT_EQ(e.path().extension(), ".jsonl");
}

}  // namespace
}  // namespace mmembed::data
