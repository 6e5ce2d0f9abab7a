// The collection store (include/mmembed/index.h): exact search against a brute-force oracle
// written here, ANN recall against exact, filters, removal, compaction, crash safety, one writer,
// recommendation, near-duplicates and the error paths.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "mmembed/error.h"
#include "mmembed/index.h"

namespace fs = std::filesystem;
using namespace mmembed;

namespace {

constexpr std::int64_t kDim = 32;
constexpr int kClusters = 40;

struct Data {
  std::vector<IndexItem> items;
  std::vector<float> image, text;  // [n, kDim]
};

// n items in kClusters clusters; label = cluster; text vectors are another noisy copy.
Data make_data(std::int64_t n, std::uint32_t seed, const std::string& prefix) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0, 1);
  std::mt19937 crng(7);  // the same centres for every call
  std::vector<float> centres(kClusters * kDim);
  for (float& c : centres)
    c = g(crng);
  Data d;
  for (std::int64_t i = 0; i < n; ++i) {
    const int c = static_cast<int>(rng() % kClusters);
    d.items.push_back({prefix + std::to_string(i), "text " + std::to_string(i),
                       "img" + std::to_string(i) + ".jpg", "c" + std::to_string(c),
                       "{\"parity\": \"" + std::string(i % 2 ? "odd" : "even") + "\"}"});
    for (std::int64_t j = 0; j < kDim; ++j) {
      d.image.push_back(centres[c * kDim + j] + 0.35f * g(rng));
      d.text.push_back(centres[c * kDim + j] + 0.5f * g(rng));
    }
  }
  return d;
}

double cosine(const float* a, const float* b) {
  double ab = 0, aa = 0, bb = 0;
  for (std::int64_t j = 0; j < kDim; ++j)
    ab += double(a[j]) * b[j], aa += double(a[j]) * a[j], bb += double(b[j]) * b[j];
  return ab / std::sqrt(aa * bb);
}

// Brute force: ids of the k most similar rows (cosine), among rows passing `keep`.
std::vector<std::string> oracle(const Data& d, const float* q, std::int64_t k,
                                const std::function<bool(std::size_t)>& keep = nullptr) {
  std::vector<std::pair<double, std::size_t>> all;
  for (std::size_t i = 0; i < d.items.size(); ++i) {
    if (keep && !keep(i)) continue;
    all.push_back({-cosine(q, d.image.data() + i * kDim), i});
  }
  std::sort(all.begin(), all.end());
  std::vector<std::string> ids;
  for (std::int64_t r = 0; r < k && r < static_cast<std::int64_t>(all.size()); ++r)
    ids.push_back(d.items[all[r].second].id);
  return ids;
}

std::vector<std::string> ids_of(const std::vector<SearchHit>& hits) {
  std::vector<std::string> ids;
  for (const auto& h : hits)
    ids.push_back(h.item.id);
  return ids;
}

class IndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("mmembed_index_" +
            std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "_" +
            std::to_string(::getpid()));
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  IndexSpec spec(AnnKind ann = AnnKind::kAuto, std::int64_t flat_max = 500) const {
    IndexSpec s;
    s.dim = kDim;
    s.kinds = {InputKind::kImage, InputKind::kText};
    s.ann.kind = ann;
    s.ann.flat_max_rows = flat_max;
    s.provenance.model = "test-model";
    s.provenance.model_digest = "sha256:test";
    return s;
  }
  static void add(Index& index, const Data& d, std::size_t from, std::size_t to) {
    std::span<const IndexItem> items(d.items.data() + from, to - from);
    index.add(items, {{InputKind::kImage,
                       std::span<const float>(d.image.data() + from * kDim, (to - from) * kDim)},
                      {InputKind::kText,
                       std::span<const float>(d.text.data() + from * kDim, (to - from) * kDim)}});
  }
  fs::path dir_;
};

TEST_F(IndexTest, ExactSearchEqualsBruteForceAndHnswRecallsIt) {
  const Data d = make_data(3000, 1, "p");
  {
    Index index = Index::create(dir_.string(), spec());
    add(index, d, 0, 2000);  // two segments, both over flat_max_rows: HNSW
    add(index, d, 2000, 3000);
    EXPECT_EQ(index.info().items, 3000);
    ASSERT_EQ(index.info().segments.size(), 2u);
    EXPECT_EQ(index.info().segments[0].ann.at(InputKind::kImage), AnnKind::kHnsw);
  }
  const Index index = Index::open(dir_.string());
  const Data q = make_data(50, 99, "q");
  SearchOptions exact;
  exact.k = 10;
  exact.exact = true;
  SearchOptions ann = exact;
  ann.exact = false;
  const auto e = index.search(InputKind::kImage, q.image.data(), 50, exact);
  const auto a = index.search(InputKind::kImage, q.image.data(), 50, ann);
  ASSERT_EQ(e.size(), 50u);
  double found = 0;
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(ids_of(e[i]), oracle(d, q.image.data() + i * kDim, 10)) << "query " << i;
    ASSERT_EQ(e[i].size(), 10u);
    for (std::size_t r = 0; r < e[i].size(); ++r) {
      EXPECT_EQ(e[i][r].rank, static_cast<std::int64_t>(r) + 1);
      const std::int64_t row = std::stoll(e[i][r].item.id.substr(1));
      EXPECT_NEAR(e[i][r].score, cosine(q.image.data() + i * kDim, d.image.data() + row * kDim),
                  1e-5);
      if (r) {
        EXPECT_GE(e[i][r - 1].score, e[i][r].score);
      }
    }
    const std::vector<std::string> exact_ids = ids_of(e[i]);
    const std::set<std::string> truth(exact_ids.begin(), exact_ids.end());
    for (const auto& h : a[i])
      found += truth.count(h.item.id);
  }
  EXPECT_GE(found / 500.0, 0.95);
  // Items come back whole.
  EXPECT_EQ(e[0][0].item.text, "text " + e[0][0].item.id.substr(1));
  EXPECT_EQ(e[0][0].item.label.substr(0, 1), "c");
  EXPECT_NE(e[0][0].item.metadata.find("parity"), std::string::npos);
}

TEST_F(IndexTest, FiltersRestrictTheResults) {
  const Data d = make_data(1500, 2, "p");
  Index index = Index::create(dir_.string(), spec());
  add(index, d, 0, 1500);
  const Data q = make_data(5, 98, "q");
  for (bool exact : {true, false}) {
    SearchOptions o;
    o.k = 8;
    o.exact = exact;
    o.filters = {parse_search_filter("label=c3")};
    const auto r = index.search(InputKind::kImage, q.image.data(), 5, o);
    for (int i = 0; i < 5; ++i) {
      EXPECT_EQ(ids_of(r[i]), oracle(d, q.image.data() + i * kDim, 8,
                                     [&](std::size_t j) { return d.items[j].label == "c3"; }));
    }
    o.filters = {{"label", "c3"}, {"metadata.parity", "odd"}};
    for (const auto& hits : index.search(InputKind::kImage, q.image.data(), 5, o)) {
      ASSERT_FALSE(hits.empty());
      for (const auto& h : hits) {
        EXPECT_EQ(h.item.label, "c3");
        EXPECT_EQ(std::stoll(h.item.id.substr(1)) % 2, 1);
      }
    }
  }
  SearchOptions none;
  none.filters = {{"label", "no such label"}};
  EXPECT_TRUE(index.search(InputKind::kImage, q.image.data(), 1, none)[0].empty());
  none.filters = {{"colour", "red"}};
  EXPECT_THROW(
      {
        try {
          index.search(InputKind::kImage, q.image.data(), 1, none);
        } catch (const InvalidArgument& e) {
          EXPECT_NE(std::string(e.what()).find("filter field 'colour'"), std::string::npos)
              << e.what();
          throw;
        }
      },
      InvalidArgument);
  EXPECT_THROW(parse_search_filter("label"), InvalidArgument);
}

TEST_F(IndexTest, RemovedItemsAreGoneAndCompactionKeepsTheResults) {
  const Data d = make_data(1200, 3, "p");
  Index index = Index::create(dir_.string(), spec());
  add(index, d, 0, 700);
  add(index, d, 700, 1200);
  std::vector<std::string> gone;
  for (int i = 0; i < 1200; i += 3)
    gone.push_back(d.items[i].id);
  EXPECT_EQ(index.remove(gone), static_cast<std::int64_t>(gone.size()));
  EXPECT_EQ(index.info().items, 1200 - static_cast<std::int64_t>(gone.size()));
  EXPECT_FALSE(index.contains(gone[0]));
  const std::vector<std::string> unknown = {"p1", "nope"};
  EXPECT_THROW(index.remove(unknown), InvalidArgument);
  EXPECT_TRUE(index.contains("p1"));  // strict: nothing removed
  const Data q = make_data(20, 97, "q");
  const auto keep = [&](std::size_t j) { return j % 3 != 0; };
  SearchOptions o;
  o.k = 10;
  for (bool exact : {true, false}) {
    o.exact = exact;
    const auto r = index.search(InputKind::kImage, q.image.data(), 20, o);
    for (int i = 0; i < 20; ++i) {
      for (const auto& h : r[i])
        EXPECT_NE(std::stoll(h.item.id.substr(1)) % 3, 0);
      if (exact) {
        EXPECT_EQ(ids_of(r[i]), oracle(d, q.image.data() + i * kDim, 10, keep));
      }
    }
  }
  o.exact = true;
  const auto before = index.search(InputKind::kImage, q.image.data(), 20, o);
  index.compact();
  EXPECT_EQ(index.info().segments.size(), 1u);
  EXPECT_EQ(index.info().rows, index.info().items);
  const auto after = index.search(InputKind::kImage, q.image.data(), 20, o);
  for (int i = 0; i < 20; ++i)
    EXPECT_EQ(ids_of(before[i]), ids_of(after[i]));
  // Only the compacted segment's folder is left.
  int folders = 0;
  for (const auto& e : fs::directory_iterator(dir_ / "segments"))
    folders += e.is_directory();
  EXPECT_EQ(folders, 1);
  // A removed id can be added again.
  add(index, d, 0, 1);
  EXPECT_TRUE(index.contains("p0"));
}

TEST_F(IndexTest, OneWriterAtATimeAndReadersAlongside) {
  const Data d = make_data(10, 4, "p");
  Index writer = Index::create(dir_.string(), spec());
  add(writer, d, 0, 10);
  try {
    Index::open(dir_.string(), true);
    FAIL() << "a second writer was let in";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("another process is writing"), std::string::npos)
        << e.what();
  }
  const Index reader = Index::open(dir_.string());
  EXPECT_EQ(reader.info().items, 10);
  const std::vector<std::string> ids = {"p0"};
  Index ro = Index::open(dir_.string());
  EXPECT_THROW(ro.remove(ids), InvalidArgument);
}

// The writer that the crash test kills: run in a fresh process (fork alone would inherit the
// OpenMP and thread-pool state of this one), told what to do by the environment.
TEST(IndexCrashChild, Run) {
  const char* dir = std::getenv("MMEMBED_TEST_INDEX_DIR");
  if (!dir) GTEST_SKIP() << "run by KillDuringAnUpdateLeavesTheOldOrTheNewState only";
  const std::string point = std::getenv("MMEMBED_TEST_CRASH");
  const Data d = make_data(900, 5, "p");
  Index index = Index::open(dir, true);
  if (point.rfind("add", 0) == 0) {
    index.add(std::span<const IndexItem>(d.items.data() + 600, 300),
              {{InputKind::kImage, std::span<const float>(d.image.data() + 600 * kDim, 300 * kDim)},
               {InputKind::kText, std::span<const float>(d.text.data() + 600 * kDim, 300 * kDim)}});
  } else if (point.rfind("remove", 0) == 0) {
    index.remove(std::vector<std::string>{"p1", "p2"});
  } else {
    index.compact();
  }
  ::_exit(4);  // not killed: the crash point was not reached
}

// A writer killed at each crash point leaves an index that opens in the old or the new state.
TEST_F(IndexTest, KillDuringAnUpdateLeavesTheOldOrTheNewState) {
  const Data d = make_data(900, 5, "p");
  {
    Index index = Index::create(dir_.string(), spec());
    add(index, d, 0, 600);
  }
  for (const char* point : {"add:segment-written", "add:before-commit", "remove:before-commit",
                            "compact:before-commit"}) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::setenv("MMEMBED_TEST_CRASH", point, 1);
      ::setenv("MMEMBED_TEST_INDEX_DIR", dir_.c_str(), 1);
      ::execl("/proc/self/exe", "index_tests", "--gtest_filter=IndexCrashChild.Run",
              static_cast<char*>(nullptr));
      ::_exit(5);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status)) << point << ": exit " << WEXITSTATUS(status);
    EXPECT_EQ(WTERMSIG(status), SIGKILL);
    Index index = Index::open(dir_.string(), true);  // opens, and clears what was left
    EXPECT_EQ(index.info().items, 600) << point;
    EXPECT_TRUE(index.contains("p1"));
    EXPECT_FALSE(index.contains("p600"));
    SearchOptions o;
    o.exact = true;
    EXPECT_EQ(index.search(InputKind::kImage, d.image.data(), 1, o)[0][0].item.id, "p0");
    int folders = 0;
    for (const auto& e : fs::directory_iterator(dir_ / "segments"))
      folders += e.is_directory();
    EXPECT_EQ(folders, static_cast<int>(index.info().segments.size())) << point;
  }
  Index index = Index::open(dir_.string(), true);
  add(index, d, 600, 900);  // and the next update works
  EXPECT_EQ(index.info().items, 900);
}

TEST_F(IndexTest, BadInputsAreRefusedBeforeAnythingIsWritten) {
  const Data d = make_data(20, 6, "p");
  Index index = Index::create(dir_.string(), spec());
  add(index, d, 0, 10);
  auto expect_error = [](auto&& f, const std::string& words) {
    try {
      f();
      ADD_FAILURE() << "no error; expected: " << words;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
    }
  };
  expect_error([&] { add(index, d, 5, 15); }, "id 'p5' is already in");
  Data dup = make_data(2, 6, "x");
  dup.items[1].id = "x0";
  expect_error([&] { add(index, dup, 0, 2); }, "appears twice");
  Data bad = make_data(2, 7, "y");
  bad.image[3] = NAN;
  expect_error([&] { add(index, bad, 0, 2); }, "image vectors: item");
  Data zero = make_data(1, 7, "z");
  std::fill(zero.image.begin(), zero.image.end(), 0.0f);
  expect_error([&] { add(index, zero, 0, 1); }, "zero");
  expect_error(
      [&] {
        index.add(std::span<const IndexItem>(d.items.data() + 10, 1),
                  {{InputKind::kImage, std::span<const float>(d.image.data(), kDim)}});
      },
      "no text vectors given");
  expect_error(
      [&] {
        index.add(std::span<const IndexItem>(d.items.data() + 10, 1),
                  {{InputKind::kImage, std::span<const float>(d.image.data(), kDim - 1)},
                   {InputKind::kText, std::span<const float>(d.text.data(), kDim)}});
      },
      "values for 1 items of dimension 32");
  Data meta = make_data(1, 8, "m");
  meta.items[0].metadata = "[1, 2]";
  expect_error([&] { add(index, meta, 0, 1); }, "metadata must be a JSON object");
  EXPECT_EQ(index.info().items, 10);
  EXPECT_EQ(index.info().segments.size(), 1u);
  SearchOptions o;
  o.k = 0;
  expect_error([&] { index.search(InputKind::kImage, d.image.data(), 1, o); },
               "k 0 is out of range");
  o.k = 3;
  expect_error([&] { index.search(InputKind::kPair, d.image.data(), 1, o); },
               "holds no pair vectors");
  expect_error([&] { index.vector("nope", InputKind::kImage); }, "no item with id 'nope'");
  expect_error([&] { Index::create(dir_.string(), spec()); }, "already exists");
  expect_error([&] { Index::open((dir_ / "segments").string()); }, "not an mmembed index");
  IndexSpec s = spec();
  s.metric = "minkowski";
  expect_error([&] { Index::create((dir_ / "other").string(), s); }, "minkowski");
}

TEST_F(IndexTest, RecommendFollowsTheLikedItemsAndMmrSpreadsThem) {
  const Data d = make_data(2000, 9, "p");
  Index index = Index::create(dir_.string(), spec());
  add(index, d, 0, 2000);
  std::vector<std::string> like;
  for (std::size_t i = 0; i < d.items.size() && like.size() < 3; ++i) {
    if (d.items[i].label == "c5") like.push_back(d.items[i].id);
  }
  RecommendOptions o;
  o.k = 10;
  const auto r = index.recommend(InputKind::kImage, like, {}, {}, 0, o);
  ASSERT_EQ(r.size(), 10u);
  for (const auto& h : r) {
    EXPECT_EQ(h.item.label, "c5");
    EXPECT_EQ(std::find(like.begin(), like.end(), h.item.id), like.end()) << "a seed came back";
  }
  // Unliking the same cluster's other members steers away from them.
  std::vector<std::string> unlike = {r[0].item.id, r[1].item.id};
  const auto r2 = index.recommend(InputKind::kImage, like, unlike, {}, 0, o);
  for (const auto& h : r2)
    EXPECT_NE(h.item.id, r[0].item.id);
  // MMR: the chosen items are less alike among themselves.
  auto spread = [&](const std::vector<SearchHit>& hits) {
    double s = 0;
    for (const auto& a : hits)
      for (const auto& b : hits)
        if (a.item.id < b.item.id)
          s += cosine(index.vector(a.item.id, InputKind::kImage).data(),
                      index.vector(b.item.id, InputKind::kImage).data());
    return s;
  };
  o.mmr_lambda = 0.3;
  const auto diverse = index.recommend(InputKind::kImage, like, {}, {}, 0, o);
  ASSERT_EQ(diverse.size(), 10u);
  EXPECT_LT(spread(diverse), spread(r));
  EXPECT_EQ(diverse[0].item.id, r[0].item.id);  // the most relevant first either way
  // A text vector alone works as a query; cancelling seeds are refused.
  const std::vector<float> t(d.text.begin(), d.text.begin() + kDim);
  o.mmr_lambda = 1;
  EXPECT_EQ(index.recommend(InputKind::kImage, {}, {}, t, 1.0, o).size(), 10u);
  EXPECT_THROW(index.recommend(InputKind::kImage, like, like, {}, 0, o), InvalidArgument);
  EXPECT_THROW(index.recommend(InputKind::kImage, {}, {}, {}, 0, o), InvalidArgument);
}

TEST_F(IndexTest, DedupeFindsThePlantedDuplicatesAndStatsShowThem) {
  Data d = make_data(600, 10, "p");
  // Plant 20 near-copies of the first 20 items.
  for (int i = 0; i < 20; ++i) {
    IndexItem it = d.items[i];
    it.id = "dup" + std::to_string(i);
    d.items.push_back(it);
    for (std::int64_t j = 0; j < kDim; ++j) {
      d.image.push_back(d.image[i * kDim + j] * 1.0001f + 1e-4f);
      d.text.push_back(d.text[i * kDim + j]);
    }
  }
  Index index = Index::create(dir_.string(), spec());
  add(index, d, 0, d.items.size());
  for (bool exact : {true, false}) {
    DedupeOptions o;
    o.threshold = 0.9999;
    o.exact = exact;
    const auto groups = index.dedupe(InputKind::kImage, o);
    ASSERT_EQ(groups.size(), 20u);
    for (const auto& g : groups) {
      ASSERT_EQ(g.items.size(), 2u);
      EXPECT_EQ("dup" + g.items[0].id.substr(1), g.items[1].id);  // the original first
      EXPECT_GE(g.min_score, 0.9999);
    }
  }
  const NeighbourStats st = index.neighbour_stats(InputKind::kImage, 1000, 5);
  EXPECT_EQ(st.sampled, 620);
  ASSERT_EQ(st.nearest.size(), st.percentiles.size());
  EXPECT_GT(st.nearest.back(), 0.9999);  // the duplicates
  EXPECT_LT(st.nearest.front(), 0.99);
  for (std::size_t i = 1; i < st.nearest.size(); ++i) {
    EXPECT_GE(st.nearest[i], st.nearest[i - 1]);
    EXPECT_GE(st.nearest[i], st.kth[i]);
  }
}

TEST_F(IndexTest, IvfPqRecallAfterExactRescoring) {
  const Data d = make_data(12000, 11, "p");
  IndexSpec s = spec(AnnKind::kIvfPq);
  s.ann.pq_m = 8;
  Index index = Index::create(dir_.string(), s);
  add(index, d, 0, 12000);
  EXPECT_EQ(index.info().segments[0].ann.at(InputKind::kImage), AnnKind::kIvfPq);
  const Data q = make_data(40, 96, "q");
  SearchOptions o;
  o.k = 10;
  const auto a = index.search(InputKind::kImage, q.image.data(), 40, o);
  double found = 0;
  for (int i = 0; i < 40; ++i) {
    const auto truth = oracle(d, q.image.data() + i * kDim, 10);
    for (const auto& h : a[i])
      found += std::count(truth.begin(), truth.end(), h.item.id);
  }
  EXPECT_GE(found / 400.0, 0.8);
  // Reopened, the same.
  const Index again = Index::open(dir_.string());
  EXPECT_EQ(ids_of(again.search(InputKind::kImage, q.image.data(), 1, o)[0]), ids_of(a[0]));
}

TEST_F(IndexTest, EuclideanListsSmallestDistancesFirst) {
  const Data d = make_data(300, 12, "p");
  IndexSpec s = spec(AnnKind::kFlat);
  s.metric = "euclidean";
  Index index = Index::create(dir_.string(), s);
  add(index, d, 0, 300);
  SearchOptions o;
  o.k = 5;
  const auto r = index.search(InputKind::kText, d.text.data(), 1, o)[0];
  ASSERT_EQ(r.size(), 5u);
  EXPECT_EQ(r[0].item.id, "p0");
  EXPECT_NEAR(r[0].score, 0.0, 1e-3);
  for (std::size_t i = 1; i < r.size(); ++i)
    EXPECT_GE(r[i].score, r[i - 1].score);
  o.exclude_ids = {"p0"};
  EXPECT_NE(index.search(InputKind::kText, d.text.data(), 1, o)[0][0].item.id, "p0");
}

}  // namespace
