// A small HTTP client over libcurl, shared by the Hub downloader and `mmembed fetch`.
//
// Every call has a connect timeout, an optional total timeout and a low-speed abort, so a call
// always returns. Transient failures (connect errors, timeouts, dropped connections, HTTP 5xx and
// 429) are retried with exponential backoff; 4xx answers are final. Downloads to a file resume
// with `Range: bytes=N-` after a dropped connection (a 200 answer to a Range request restarts the
// file). Only http and https are allowed by default, for the first URL and for redirects.
//
//   hub::HttpOptions o;
//   o.timeout_ms = 30000;
//   auto r = hub::http_download("https://example.org/a.jpg", "a.jpg.part", o);
//   if (!r.ok()) std::cerr << r.describe() << "\n";
//
// Thread-safety: the functions are reentrant (one curl easy handle per call); call
// http_global_init() (done implicitly on first use) before starting threads if you like.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mmembed::hub {

struct HttpOptions {
  long connect_timeout_ms = 10000;
  long timeout_ms = 0;             // per attempt, whole transfer; 0: none (low-speed abort still applies)
  long low_speed_bytes = 1;        // abort an attempt that moves fewer bytes/s than this...
  long low_speed_time_s = 30;      // ...for this many seconds; 0 disables
  int retries = 3;                 // extra attempts after the first, on transient failures only
  long backoff_ms = 500;           // delay before the first retry; doubles each retry
  long backoff_max_ms = 8000;      // cap of the delay (also caps a Retry-After header)
  std::uint64_t max_bytes = 0;     // body size limit; 0: none
  int max_redirects = 10;
  bool follow_redirects = true;
  std::string protocols = "http,https";  // allowed schemes, also for redirects
  std::string user_agent;                // empty: "mmembed/<version>"
  std::vector<std::string> headers;      // extra request headers, "Name: value"
  const std::atomic<bool>* cancel = nullptr;  // set to true to abort transfers and retries
};

// The most response-header bytes one response may send: a server that sends more is refused
// (HttpFailure::kTooLarge) instead of filling memory. Real headers are a few KB.
inline constexpr std::uint64_t kMaxResponseHeaderBytes = 256 * 1024;

// Why a request failed (kNone: a response arrived; look at the status).
enum class HttpFailure {
  kNone,
  kConnect,           // DNS, refused, unreachable
  kTimeout,           // connect, total or low-speed timeout
  kDropped,           // connection closed or reset mid-transfer
  kTooLarge,          // max_bytes exceeded
  kTooManyRedirects,
  kProtocol,          // scheme not allowed / unsupported / malformed URL
  kCancelled,
  kFile,              // local file could not be written
  kOther,
};

struct HttpResponse {
  long status = 0;  // HTTP status of the final response; 0 when none arrived
  std::string url;  // effective URL after redirects
  std::vector<std::pair<std::string, std::string>> headers;  // of the final response, in order
  std::string body;            // http_get: the body; otherwise the start of an error body
  std::uint64_t bytes = 0;     // http_download: size of the file after the call
  HttpFailure failure = HttpFailure::kNone;
  std::string error;           // transport error text (empty when failure == kNone)
  int attempts = 0;

  // Last value of a header, case-insensitive name; nullopt if absent.
  std::optional<std::string> header(std::string_view name) const;
  bool ok() const { return failure == HttpFailure::kNone && status >= 200 && status < 300; }
  // One line such as "HTTP 404" or "timeout: Operation timed out after 300 milliseconds".
  std::string describe() const;
};

// Called during transfers with the bytes of the body held so far (including a resumed prefix)
// and the expected total (0 if unknown).
using ProgressFn = std::function<void(std::uint64_t have, std::uint64_t total)>;

void http_global_init();

// HEAD request. Redirects are followed only if options.follow_redirects.
HttpResponse http_head(const std::string& url, const HttpOptions& options);

// GET into memory (response.body).
HttpResponse http_get(const std::string& url, const HttpOptions& options);

// GET into `path`. With `resume`, an existing `path` is continued with a Range request; otherwise
// it is truncated. Retries after a dropped connection continue from the bytes already written.
// On a non-2xx answer the file is left as it was before the call (error body in response.body).
HttpResponse http_download(const std::string& url, const std::filesystem::path& path,
                           const HttpOptions& options, const ProgressFn& progress = {},
                           bool resume = true);

// True for failures worth retrying (transport failures and HTTP 5xx / 429).
bool http_retryable(const HttpResponse& r);

// The host[:port] of an absolute URL ("" if none), lowercase.
std::string url_host(std::string_view url);
// True if url starts with "http://" or "https://" (case-insensitive).
bool is_http_url(std::string_view url);

// Runs task(0..n-1) on `jobs` worker threads; returns when all are done. Exceptions thrown by
// tasks are rethrown (the first one) after every worker has stopped.
void run_parallel(std::size_t n, int jobs, const std::function<void(std::size_t)>& task);

}  // namespace mmembed::hub
