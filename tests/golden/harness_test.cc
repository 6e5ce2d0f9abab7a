// Tests of the golden harness itself: the committed goldens are intact and complete, every stage
// has a tolerance, and the comparator catches a perturbed array.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "compare.h"
#include "golden.h"
#include "mmembed/error.h"

namespace mmembed::golden {
namespace {

const Manifest& manifest() { return Manifest::get(); }

TEST(GoldenManifest, EveryStoredArrayMatchesItsChecksum) {
  int loaded = 0;
  for (const Entry& e : manifest().entries()) {
    if (!e.has_data()) continue;
    Tensor t = manifest().load(e);  // throws when dtype, shape or crc32 disagree
    EXPECT_EQ(t.shape(), e.shape) << e.name;
    ++loaded;
  }
  EXPECT_GT(loaded, 100);
}

TEST(GoldenManifest, EveryStageHasAToleranceWithAReason) {
  std::set<std::string> stages;
  for (const Entry& e : manifest().entries()) {
    Tolerance tol = manifest().tolerance(e);
    EXPECT_FALSE(tol.reason.empty()) << e.stage;
    EXPECT_GE(tol.atol, 0.0);
    stages.insert(e.stage);
  }
  EXPECT_GT(stages.size(), 20u);
}

// docs/numerics.md carries the tolerance table for readers; it must say what the tests use.
TEST(GoldenManifest, NumericsDocMatchesToleranceTable) {
  std::ifstream doc(std::string(MMEMBED_SOURCE_DIR) + "/docs/numerics.md");
  ASSERT_TRUE(doc.good());
  // Rows look like: | `stage` | atol | rtol | reason |
  std::map<std::string, std::pair<double, double>> rows;
  std::string line;
  while (std::getline(doc, line)) {
    if (line.rfind("| `", 0) != 0) continue;
    std::vector<std::string> cells;
    std::stringstream ss(line.substr(1));
    std::string cell;
    while (std::getline(ss, cell, '|')) {
      cell.erase(0, cell.find_first_not_of(' '));
      cell.erase(cell.find_last_not_of(' ') + 1);
      cells.push_back(cell);
    }
    if (cells.size() < 4 || cells[0].size() < 3 || cells[0].back() != '`') continue;
    try {
      rows[cells[0].substr(1, cells[0].size() - 2)] = {std::stod(cells[1]), std::stod(cells[2])};
    } catch (const std::exception&) {
      // a table row of another section (kernels), whose columns are not numbers
    }
  }
  int checked = 0;
  for (const Entry& e : manifest().entries()) {
    Tolerance tol = manifest().tolerance(e);
    bool found = false;
    for (const auto& [stage, at_rt] : rows) {
      if (e.stage.compare(0, stage.size(), stage) == 0 && at_rt.first == tol.atol &&
          at_rt.second == tol.rtol) {
        found = true;
      }
    }
    EXPECT_TRUE(found) << "docs/numerics.md has no row for stage " << e.stage << " with atol "
                       << tol.atol << " rtol " << tol.rtol;
    ++checked;
  }
  EXPECT_GT(checked, 0);
}

TEST(GoldenManifest, IntegerAndPixelStagesAreExact) {
  for (const char* name : {"input_ids", "attention_mask", "resized_u8", "pixel_values"}) {
    Entry e;
    e.stage = name;
    Tolerance tol = manifest().tolerance(e);
    EXPECT_EQ(tol.atol, 0.0) << name;
    EXPECT_EQ(tol.rtol, 0.0) << name;
  }
}

TEST(GoldenManifest, UnknownNamesAndChecksumOnlyLoadsAreErrors) {
  EXPECT_THROW(manifest().entry("no/such/array"), InvalidArgument);
  for (const Entry& e : manifest().entries()) {
    if (e.has_data()) continue;
    EXPECT_THROW(manifest().load(e), InvalidArgument);
    break;
  }
}

// A float golden with data: the first text_embeds entry.
const Entry& some_float_entry() {
  for (const Entry& e : manifest().entries()) {
    if (e.has_data() && e.stage == "text_embeds") return e;
  }
  throw std::runtime_error("no text_embeds golden with data");
}

TEST(GoldenCompare, IdenticalArraysPass) {
  const Entry& e = some_float_entry();
  Tensor ref = manifest().load(e);
  CompareResult r = compare(e.name, ref.clone(), ref, manifest().tolerance(e));
  EXPECT_TRUE(r.ok) << r.message;
  EXPECT_EQ(r.max_abs_diff, 0.0);
}

TEST(GoldenCompare, PerturbationWithinTolerancePasses) {
  const Entry& e = some_float_entry();
  Tensor ref = manifest().load(e);
  Tolerance tol = manifest().tolerance(e);
  Tensor ours = ref.clone();
  ours.data<float>()[3] += static_cast<float>(tol.atol * 0.5);
  EXPECT_TRUE(compare(e.name, ours, ref, tol).ok);
}

TEST(GoldenCompare, PerturbedArrayFailsAndNamesTheElement) {
  const Entry& e = some_float_entry();
  Tensor ref = manifest().load(e);
  Tolerance tol = manifest().tolerance(e);
  Tensor ours = ref.clone();
  ours.data<float>()[5] += static_cast<float>(10 * (tol.atol + tol.rtol));
  CompareResult r = compare(e.name, ours, ref, tol);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.mismatches, 1);
  EXPECT_EQ(r.worst_index, 5);
  EXPECT_NE(r.message.find(e.name), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("flat index 5"), std::string::npos) << r.message;
}

TEST(GoldenCompare, NanShapeAndIntegerMismatchesFail) {
  const Entry& e = some_float_entry();
  Tensor ref = manifest().load(e);
  Tolerance tol = manifest().tolerance(e);
  Tensor nan = ref.clone();
  nan.data<float>()[0] = NAN;
  EXPECT_FALSE(compare(e.name, nan, ref, tol).ok);
  EXPECT_FALSE(compare(e.name, ref.reshape({-1}), ref, tol).ok);

  Tensor a = Tensor::from<std::int64_t>({3}, {0, 1, 2});
  Tensor b = Tensor::from<std::int64_t>({3}, {0, 1, 3});
  Tolerance loose{1.0, 1.0, "loose"};
  EXPECT_FALSE(compare("ids", a, b, loose).ok) << "integers must compare exactly";
}

TEST(GoldenChecksum, OneFlippedBitInAnImageIsCaught) {
  const Entry* img = nullptr;
  for (const Entry& e : manifest().entries()) {
    if (e.has_data() && e.stage == "decoded_rgb") {
      img = &e;
      break;
    }
  }
  ASSERT_NE(img, nullptr);
  Tensor ref = manifest().load(*img);
  EXPECT_EQ(verify_checksum(*img, ref), "");
  Tensor flipped = ref.clone();
  flipped.data<std::uint8_t>()[flipped.numel() / 2] ^= 1;
  std::string msg = verify_checksum(*img, flipped);
  EXPECT_NE(msg.find(img->name), std::string::npos) << msg;
  EXPECT_NE(verify_checksum(*img, ref.reshape({-1})), "");
}

TEST(Gunzip, RejectsGarbage) {
  std::vector<std::uint8_t> junk = {1, 2, 3, 4, 5};
  EXPECT_THROW(gunzip(junk, "junk.gz"), FormatError);
}

}  // namespace
}  // namespace mmembed::golden
