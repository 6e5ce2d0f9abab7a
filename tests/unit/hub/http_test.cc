// The libcurl client against tests/support/fake_hub.py: retries, timeouts, limits, resume.
#include <gtest/gtest.h>

#include <atomic>

#include "hub/http.h"
#include "hub_test_util.h"

namespace mmembed::hub {
namespace {

using hubtest::read_file;
using hubtest::TempDir;
namespace fs = std::filesystem;

class HttpTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new FakeHub({"--images", std::string(MMEMBED_TEST_DATA_DIR) + "/images",
                           "--slow-seconds", "3"});
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    if (!server_->ok()) GTEST_SKIP() << server_->skip_reason();
    hubtest::reset(*server_);
  }
  static HttpOptions fast() {
    HttpOptions o;
    o.connect_timeout_ms = 2000;
    o.timeout_ms = 5000;
    o.retries = 2;
    o.backoff_ms = 10;
    o.backoff_max_ms = 50;
    return o;
  }
  static std::string image(const std::string& name) {
    return read_file(std::string(MMEMBED_TEST_DATA_DIR) + "/images/" + name);
  }
  static FakeHub* server_;
};
FakeHub* HttpTest::server_ = nullptr;

TEST_F(HttpTest, GetsBodyAndHeaders) {
  auto r = http_get(server_->url("/img/cat.webp"), fast());
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, image("cat.webp"));
  EXPECT_EQ(r.header("content-type").value_or(""), "image/webp");
  EXPECT_EQ(r.attempts, 1);
}

TEST_F(HttpTest, ClientErrorsAreNotRetried) {
  auto r = http_get(server_->url("/status/404"), fast());
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.attempts, 1);
  EXPECT_EQ(hubtest::requests(*server_).size(), 1u);
}

TEST_F(HttpTest, ServerErrorsAreRetriedWithBackoff) {
  auto r = http_get(server_->url("/status/500"), fast());
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.attempts, 3);  // 1 + 2 retries
  auto flaky = http_get(server_->url("/flaky/gray.jpg"), fast());
  ASSERT_TRUE(flaky.ok()) << flaky.describe();
  EXPECT_EQ(flaky.attempts, 2);  // 503 then 200
  EXPECT_EQ(flaky.body, image("gray.jpg"));
}

TEST_F(HttpTest, FollowsRedirectsUpToTheLimit) {
  HttpOptions o = fast();
  o.max_redirects = 3;
  auto r = http_get(server_->url("/redirect/3/gray.jpg"), o);
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.url, server_->url("/img/gray.jpg"));
  auto loop = http_get(server_->url("/loop"), o);
  EXPECT_EQ(loop.failure, HttpFailure::kTooManyRedirects);
  EXPECT_EQ(loop.attempts, 1);
  o.follow_redirects = false;
  auto head = http_head(server_->url("/redirect/1/gray.jpg"), o);
  EXPECT_EQ(head.status, 302);
  EXPECT_EQ(head.header("Location").value_or(""), "/img/gray.jpg");
}

TEST_F(HttpTest, TimeoutsEndSlowServers) {
  HttpOptions o = fast();
  o.timeout_ms = 300;
  o.retries = 1;
  auto r = http_get(server_->url("/slow"), o);
  EXPECT_EQ(r.failure, HttpFailure::kTimeout) << r.describe();
  EXPECT_EQ(r.attempts, 2);
  HttpOptions s = fast();
  s.timeout_ms = 0;
  s.low_speed_bytes = 1000;  // the body trickles at 1 byte/s
  s.low_speed_time_s = 1;
  s.retries = 0;
  auto body = http_get(server_->url("/slow-body"), s);
  EXPECT_EQ(body.failure, HttpFailure::kTimeout) << body.describe();
}

TEST_F(HttpTest, SizeLimitWithAndWithoutContentLength) {
  HttpOptions o = fast();
  o.max_bytes = 1000000;
  auto r = http_get(server_->url("/big.bin"), o);
  EXPECT_EQ(r.failure, HttpFailure::kTooLarge) << r.describe();
  EXPECT_EQ(r.attempts, 1);
  auto c = http_get(server_->url("/big-chunked"), o);
  EXPECT_EQ(c.failure, HttpFailure::kTooLarge) << c.describe();
  o.max_bytes = 3000000;
  EXPECT_TRUE(http_get(server_->url("/big.bin"), o).ok());
}

TEST_F(HttpTest, HugeResponseHeadersAreRefusedByName) {
  // 20 MB of headers, as one line (libcurl's own limit, reported by it as "Out of memory") and
  // as 5000 short lines (our total limit): both a clear kTooLarge, never retried.
  for (const char* kind : {"line", "many"}) {
    HttpResponse r = http_get(server_->url(std::string("/huge-header/") + kind), fast());
    EXPECT_EQ(r.failure, HttpFailure::kTooLarge) << kind << ": " << r.describe();
    EXPECT_NE(r.error.find("response headers larger than the limit of 262144 bytes"),
              std::string::npos)
        << kind << ": " << r.error;
    EXPECT_EQ(r.attempts, 1) << kind;
  }
}

TEST_F(HttpTest, OnlyHttpAndHttpsByDefault) {
  auto r = http_get("ftp://127.0.0.1/x.jpg", fast());
  EXPECT_EQ(r.failure, HttpFailure::kProtocol) << r.describe();
  auto f = http_get("file:///etc/passwd", fast());
  EXPECT_EQ(f.failure, HttpFailure::kProtocol) << f.describe();
  EXPECT_TRUE(f.body.empty());
}

TEST_F(HttpTest, ConnectErrorsAreReported) {
  HttpOptions o = fast();
  o.retries = 1;
  // Port 1 (tcpmux) is not served on loopback in a test environment: connection refused.
  auto r = http_get("http://127.0.0.1:1/", o);
  EXPECT_EQ(r.failure, HttpFailure::kConnect) << r.describe();
  EXPECT_EQ(r.attempts, 2);
}

TEST_F(HttpTest, DownloadResumesAfterADroppedConnection) {
  TempDir tmp;
  fs::path out = tmp.path() / "cat.jpg";
  std::uint64_t last = 0;
  auto r = http_download(server_->url("/drop/cat_landscape.jpg"), out, fast(),
                         [&](std::uint64_t have, std::uint64_t) { last = have; });
  ASSERT_TRUE(r.ok()) << r.describe();
  const std::string want = image("cat_landscape.jpg");
  EXPECT_EQ(read_file(out), want);
  EXPECT_EQ(r.bytes, want.size());
  EXPECT_EQ(last, want.size());
  auto log = hubtest::requests(*server_);
  ASSERT_GE(log.size(), 2u);
  EXPECT_EQ(log[0].range, "");
  EXPECT_EQ(log[1].range, "bytes=" + std::to_string(want.size() / 2) + "-");
}

TEST_F(HttpTest, DownloadContinuesAnExistingPartialFile) {
  TempDir tmp;
  fs::path out = tmp.path() / "gray.jpg";
  const std::string want = image("gray.jpg");
  hubtest::write_file(out, want.substr(0, 1000));
  auto r = http_download(server_->url("/img/gray.jpg"), out, fast());
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(read_file(out), want);
  // Without resume the file is rewritten from the start.
  hubtest::write_file(out, "garbage that is longer than nothing");
  auto full = http_download(server_->url("/img/gray.jpg"), out, fast(), {}, /*resume=*/false);
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(read_file(out), want);
}

TEST_F(HttpTest, AWrongRangeIsNotAppended) {
  TempDir tmp;
  fs::path out = tmp.path() / "gray.jpg";
  hubtest::write_file(out, image("gray.jpg").substr(0, 100));
  auto r = http_download(server_->url("/badrange/gray.jpg"), out, fast());
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.describe().find("another range"), std::string::npos) << r.describe();
  EXPECT_EQ(read_file(out), image("gray.jpg").substr(0, 100));
}

TEST_F(HttpTest, ErrorAnswersLeaveTheFileAlone) {
  TempDir tmp;
  fs::path out = tmp.path() / "keep.bin";
  hubtest::write_file(out, "previous");
  auto r = http_download(server_->url("/status/404"), out, fast(), {}, /*resume=*/false);
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(read_file(out), "previous");
  EXPECT_EQ(r.body, "status 404");
}

TEST_F(HttpTest, ParallelRunnerRunsEveryTaskAndRethrows) {
  std::vector<int> done(50, 0);
  run_parallel(done.size(), 8, [&](std::size_t i) { done[i] += 1; });
  for (int d : done) EXPECT_EQ(d, 1);
  EXPECT_THROW(run_parallel(10, 4, [](std::size_t i) {
                 if (i == 7) throw std::runtime_error("seven");
               }),
               std::runtime_error);
}

TEST(HttpUrl, HostAndScheme) {
  EXPECT_EQ(url_host("https://User@Huggingface.co:443/a/b?x"), "huggingface.co:443");
  EXPECT_EQ(url_host("/relative/path"), "");
  EXPECT_TRUE(is_http_url("HTTPS://x"));
  EXPECT_FALSE(is_http_url("ftp://x"));
}

}  // namespace
}  // namespace mmembed::hub
