// Matrix readers (.npy, CSV/TSV, JSONL) and the atomic .npy writer. Fixtures:
// tests/data/analysis/inputs/, written by numpy via scripts/reference/gen_analysis.py.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iterator>
#include <filesystem>
#include <fstream>
#include <string>

#include "io/matrix.h"
#include "mmembed/error.h"

namespace mmembed::io {
namespace {

std::string input(const std::string& name) {
  return std::string(MMEMBED_TEST_DATA_DIR) + "/analysis/inputs/" + name;
}

std::string temp_file(const std::string& name, const std::string& contents) {
  const std::string path = (std::filesystem::temp_directory_path() / ("mmembed_matrix_" + name)).string();
  std::ofstream(path, std::ios::binary) << contents;
  return path;
}

template <typename Exc>
void expect_error(const std::function<void()>& fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "no exception; wanted '" << needle << "'";
  } catch (const Exc& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(Matrix, EveryFormatReadsTheSameValues) {
  const Matrix ref = read_matrix(input("emb_f32.npy"));
  ASSERT_EQ(ref.rows, 12);
  ASSERT_EQ(ref.cols, 6);
  for (const char* name : {"emb_f64_fortran.npy", "emb_big_endian.npy", "emb.csv", "emb.tsv", "emb.jsonl"}) {
    const Matrix m = read_matrix(input(name));
    EXPECT_EQ(m.rows, 12) << name;
    EXPECT_EQ(m.cols, 6) << name;
    EXPECT_EQ(m.data, ref.data) << name;  // repr() of float32 values round-trips exactly
  }
}

TEST(Matrix, WriteNpyRoundTripsAtomically) {
  const Matrix ref = read_matrix(input("emb_f32.npy"));
  const std::string path = (std::filesystem::temp_directory_path() / "mmembed_matrix_out.npy").string();
  write_npy(path, ref.data.data(), ref.rows, ref.cols);
  const Matrix back = read_npy(path);
  EXPECT_EQ(back.rows, ref.rows);
  EXPECT_EQ(back.data, ref.data);
  // numpy's own file and ours have the same header layout (64-byte aligned data)
  EXPECT_EQ(std::filesystem::file_size(path), std::filesystem::file_size(input("emb_f32.npy")));
  for (const auto& e : std::filesystem::directory_iterator(std::filesystem::temp_directory_path())) {
    EXPECT_EQ(e.path().string().find("mmembed_matrix_out.npy.tmp"), std::string::npos);
  }
  std::filesystem::remove(path);
  expect_error<IoError>([&] { write_npy("/nonexistent-dir/x.npy", ref.data.data(), 1, 1); },
                        "/nonexistent-dir/x.npy: cannot write");
}

TEST(Matrix, RefusesBadNpy) {
  expect_error<FormatError>([] { read_matrix(input("object.npy")); }, "object arrays ('|O') are refused");
  expect_error<Unsupported>([] { read_matrix(input("int32.npy")); }, "dtype '<i4' is not supported");
  expect_error<FormatError>([] { read_matrix(input("rank3.npy")); }, "expected a 2-D array (points x dims), got 3-D");
  const std::string good = [] {
    std::ifstream in(input("emb_f32.npy"), std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }();
  expect_error<FormatError>([&] { read_npy(temp_file("trunc.npy", good.substr(0, good.size() - 4))); },
                            "needs 288 data bytes, the file has 284");
  expect_error<FormatError>([&] { read_npy(temp_file("magic.npy", "not numpy at all")); }, "no \\x93NUMPY magic");
  std::string extra_key = good;
  extra_key.replace(extra_key.find("'descr'"), 7, "'descx'");
  expect_error<FormatError>([&] { read_npy(temp_file("key.npy", extra_key)); }, "unexpected key 'descx'");
  std::string nan_data = good;
  const float nan = NAN;
  std::memcpy(nan_data.data() + 128 + 4 * (2 * 6 + 3), &nan, 4);
  expect_error<FormatError>([&] { read_npy(temp_file("nan.npy", nan_data)); }, "row 2, column 3: value nan is not finite");
  MatrixReadOptions allow;
  allow.allow_non_finite = true;
  EXPECT_TRUE(std::isnan(read_npy(temp_file("nan.npy", nan_data), allow).data[2 * 6 + 3]));
}

TEST(Matrix, RefusesBadText) {
  expect_error<FormatError>([] { read_matrix(input("bad_nan.csv")); }, "bad_nan.csv: line 2, column 2: value nan is not finite");
  expect_error<FormatError>([] { read_matrix(input("ragged.csv")); }, "ragged.csv: line 3: 2 values, expected 3 (as line 1)");
  expect_error<FormatError>([] { read_delimited(temp_file("word.csv", "1,2\n3,x\n"), ','); }, "line 2, column 2: 'x' is not a number");
  expect_error<FormatError>([] { read_delimited(temp_file("empty.csv", "\n\n"), ','); }, "no rows of numbers");
  expect_error<FormatError>([] { read_jsonl(temp_file("a.jsonl", "[1,2]\n[1]\n")); }, "line 2: 1 values, expected 2 (as line 1)");
  expect_error<FormatError>([] { read_jsonl(temp_file("b.jsonl", "{\"v\":[1,2]}\n")); }, "line 1: no field 'embedding'");
  expect_error<FormatError>([] { read_jsonl(temp_file("c.jsonl", "[1,\"2\"]\n")); }, "line 1, element 1: expected a number");
  expect_error<FormatError>([] { read_jsonl(temp_file("d.jsonl", "[1,2\n")); }, "d.jsonl: line 1");
  expect_error<FormatError>([] { read_jsonl(temp_file("e.jsonl", "[1e999]\n")); }, "line 1: invalid JSON");
  expect_error<FormatError>([] { read_jsonl(temp_file("h.jsonl", "[0, 1e39]\n")); },
                            "h.jsonl: line 1, element 1: value 1e+39 is out of float32 range");
}

TEST(Matrix, NumbersBeyondFloat32AreNamedAsSuch) {
  // Issue #18: 1e39 is a finite number that float32 cannot hold; it used to be reported as
  // "value inf is not finite".
  expect_error<FormatError>([] { read_delimited(temp_file("big.csv", "1,2\n3, 1e39\n"), ','); },
                            "big.csv: line 2, column 2: value 1e39 is out of float32 range "
                            "(largest magnitude 3.40282e+38)");
  expect_error<FormatError>([] { read_delimited(temp_file("neg.tsv", "-3.5e38\t0\n"), '\t'); },
                            "neg.tsv: line 1, column 1: value -3.5e38 is out of float32 range");
  // Beyond double too (from_chars: out of range): still out of float32 range, not "inf".
  expect_error<FormatError>([] { read_delimited(temp_file("huge.csv", "1e400\n"), ','); },
                            "huge.csv: line 1, column 1: value 1e400 is out of float32 range");
  // Too small for float32 (or double): rounds toward 0 like numpy's float32, no error.
  const Matrix tiny = read_delimited(temp_file("tiny.csv", "1e-50,1e-400,3.4e38\n"), ',');
  EXPECT_EQ(tiny.data, (std::vector<float>{0.0f, 0.0f, 3.4e38f}));
  // Raw control bytes in a field are escaped in the message.
  expect_error<FormatError>([] { read_delimited(temp_file("esc.csv", "1,2\n3,\x1b[2J\n"), ','); },
                            "'\\x1b[2J' is not a number");
  // With non-finite values allowed, an out-of-range value is Inf, as numpy would make it.
  MatrixReadOptions allow;
  allow.allow_non_finite = true;
  EXPECT_TRUE(std::isinf(read_delimited(temp_file("inf.csv", "1e39\n"), ',', allow).data[0]));
  MatrixReadOptions field;
  field.field = "v";
  EXPECT_EQ(read_jsonl(temp_file("f.jsonl", "{\"v\":[1,2]}\n\n{\"v\":[3,4]}\n"), field).data,
            (std::vector<float>{1, 2, 3, 4}));
  EXPECT_EQ(read_delimited(temp_file("g.csv", "a,b\r\n1, 2\r\n\r\n3,+4\r\n"), ',').data,
            (std::vector<float>{1, 2, 3, 4}));
  expect_error<Unsupported>([] { read_matrix("x.parquet"); }, "unknown matrix format '.parquet'");
  expect_error<IoError>([] { read_matrix(input("missing.npy")); }, "missing.npy: cannot open");
}

}  // namespace
}  // namespace mmembed::io
