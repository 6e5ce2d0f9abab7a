// fetch_urls() against the fake image host: good images, every failure class, atomic files,
// the URL-keyed cache.
#include <gtest/gtest.h>

#include "hub/fetch.h"
#include "hub/sha256.h"
#include "hub_test_util.h"
#include "mmembed/error.h"

namespace mmembed::hub {
namespace {

using hubtest::read_file;
using hubtest::TempDir;
namespace fs = std::filesystem;

class FetchTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new FakeHub({"--images", std::string(MMEMBED_TEST_DATA_DIR) + "/images",
                           "--slow-seconds", "3"});
  }
  static void TearDownTestSuite() { delete server_; }
  void SetUp() override {
    if (!server_->ok()) GTEST_SKIP() << server_->skip_reason();
    hubtest::reset(*server_);
  }
  static FetchOptions fast() {
    FetchOptions o;
    o.jobs = 4;
    o.progress = ProgressMode::kNever;
    o.http.connect_timeout_ms = 2000;
    o.http.timeout_ms = 500;
    o.http.retries = 1;
    o.http.backoff_ms = 10;
    o.http.max_bytes = 1000000;
    o.http.max_redirects = 3;
    return o;
  }
  static std::string image(const std::string& name) {
    return read_file(std::string(MMEMBED_TEST_DATA_DIR) + "/images/" + name);
  }
  static FakeHub* server_;
};
FakeHub* FetchTest::server_ = nullptr;

// Issue #18: each job is a thread and a connection; the count is bounded before any work.
TEST(FetchJobs, OutOfRangeIsRefused) {
  const fs::path dir =
      fs::temp_directory_path() / ("mmembed-fetch-jobs-" + std::to_string(::getpid()));
  for (int jobs : {0, -1, kMaxFetchJobs + 1, 100000}) {
    FetchOptions o;
    o.jobs = jobs;
    try {
      fetch_urls({"http://127.0.0.1:9/x.jpg"}, dir, o);
      ADD_FAILURE() << "jobs " << jobs << " was accepted";
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find("jobs " + std::to_string(jobs) +
                                           " is out of range (1 to 256)"),
                std::string::npos)
          << e.what();
    }
  }
  EXPECT_FALSE(fs::exists(dir));
}

TEST(Sniff, MagicBytes) {
  const std::string dir = std::string(MMEMBED_TEST_DATA_DIR) + "/images/";
  EXPECT_EQ(sniff_image(read_file(dir + "gray.jpg")), "jpeg");
  EXPECT_EQ(sniff_image(read_file(dir + "astronaut_square.png")), "png");
  EXPECT_EQ(sniff_image(read_file(dir + "cat.webp")), "webp");
  EXPECT_EQ(sniff_image("GIF89a\x01\x00"), "gif");
  EXPECT_EQ(sniff_image(std::string("BM") + std::string(30, '\0')), "bmp");
  EXPECT_EQ(sniff_image("<!DOCTYPE html>"), "");
  EXPECT_TRUE(looks_like_html("\xEF\xBB\xBF  <!doctype HTML><html>"));
  EXPECT_TRUE(looks_like_html("<html lang=en>"));
  EXPECT_FALSE(looks_like_html("\xFF\xD8\xFF"));
  for (const char* f : {"gray.jpg", "cmyk.jpg", "astronaut_square.png", "cat.webp", "coffee_lossless.webp"}) {
    std::string fmt = sniff_image(read_file(dir + f));
    EXPECT_EQ(check_image_complete(dir + f, fmt), "") << f;
  }
}

TEST_F(FetchTest, DownloadsGoodImagesAndReportsEveryFailure) {
  TempDir out;
  std::vector<std::string> urls = {
      server_->url("/img/gray.jpg"),            // 0 ok
      server_->url("/img/astronaut_square.png"),  // 1 ok
      server_->url("/img/cat.webp"),            // 2 ok
      server_->url("/html"),                    // 3 HTML with 200
      server_->url("/truncated.jpg"),           // 4 truncated JPEG
      server_->url("/big.bin"),                 // 5 over the size limit
      server_->url("/img/nothing.jpg"),         // 6 404
      server_->url("/slow"),                    // 7 timeout
      "ftp://127.0.0.1/x.jpg",                  // 8 scheme
      server_->url("/img/gray.jpg"),            // 9 duplicate of 0
      server_->url("/drop/cat_landscape.jpg"),  // 10 dropped once, resumed
      server_->url("/loop"),                    // 11 redirect loop
      server_->url("/flaky/cmyk.jpg"),          // 12 503 then ok
  };
  auto res = fetch_urls(urls, out.path(), fast());
  ASSERT_EQ(res.size(), urls.size());
  for (int i : {0, 1, 2, 9, 10, 12}) {
    EXPECT_TRUE(res[i].ok) << i << ": " << res[i].reason;
    EXPECT_FALSE(res[i].cached) << i;
  }
  EXPECT_EQ(res[0].path, out.path() / (sha256_hex(urls[0]) + ".jpg"));
  EXPECT_EQ(res[1].path.extension(), ".png");
  EXPECT_EQ(res[2].format, "webp");
  EXPECT_EQ(read_file(res[0].path), image("gray.jpg"));
  EXPECT_EQ(read_file(res[10].path), image("cat_landscape.jpg"));
  EXPECT_EQ(read_file(res[12].path), image("cmyk.jpg"));
  EXPECT_EQ(res[9].path, res[0].path);

  EXPECT_NE(res[3].reason.find("HTML"), std::string::npos) << res[3].reason;
  EXPECT_NE(res[4].reason.find("truncated JPEG"), std::string::npos) << res[4].reason;
  EXPECT_NE(res[5].reason.find("too large"), std::string::npos) << res[5].reason;
  EXPECT_EQ(res[6].reason, "HTTP 404");
  EXPECT_NE(res[7].reason.find("timeout"), std::string::npos) << res[7].reason;
  EXPECT_NE(res[8].reason.find("scheme"), std::string::npos) << res[8].reason;
  EXPECT_NE(res[11].reason.find("redirects"), std::string::npos) << res[11].reason;

  // Only final files: one per distinct good URL, no temporaries.
  int files = 0;
  for (const auto& e : fs::directory_iterator(out.path())) {
    ++files;
    EXPECT_EQ(e.path().extension().string().find("part"), std::string::npos) << e.path();
  }
  EXPECT_EQ(files, 5);
  // The duplicate was fetched once.
  int gray = 0;
  for (const auto& r : hubtest::requests(*server_)) gray += r.path == "/img/gray.jpg";
  EXPECT_EQ(gray, 1);

  // A rerun downloads nothing that succeeded before.
  hubtest::reset(*server_);
  auto again = fetch_urls({urls[0], urls[1], urls[2], urls[10], urls[12]}, out.path(), fast());
  for (const auto& r : again) {
    EXPECT_TRUE(r.ok && r.cached) << r.reason;
  }
  EXPECT_TRUE(hubtest::requests(*server_).empty());
}

}  // namespace
}  // namespace mmembed::hub
