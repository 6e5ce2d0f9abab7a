#include "hub/http.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>
#include <mutex>
#include <thread>

#include "mmembed/version.h"

namespace mmembed::hub {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

constexpr std::size_t kErrorBodyCap = 4096;

// State of one attempt, shared with the libcurl callbacks.
struct Attempt {
  CURL* curl = nullptr;
  // Targets: a file descriptor (download) or a string (memory).
  int fd = -1;
  std::string* memory = nullptr;
  std::uint64_t offset = 0;     // bytes already in the file that this attempt continues
  std::uint64_t written = 0;    // body bytes this attempt delivered to the target
  std::uint64_t max_bytes = 0;
  bool decided = false;         // first body byte seen: target chosen
  bool to_target = false;       // body goes to the target (2xx) or to error_body
  bool too_large = false;
  bool file_error = false;
  bool range_mismatch = false;
  bool headers_too_large = false;
  std::uint64_t header_bytes = 0;  // of the current response
  std::string file_error_text;
  long status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string error_body;
  const ProgressFn* progress = nullptr;
  const std::atomic<bool>* cancel = nullptr;
};

std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) {
  auto* a = static_cast<Attempt*>(user);
  std::string_view line(data, size * count);
  std::string_view t = trim(line);
  if (t.size() >= 5 && t.substr(0, 5) == "HTTP/") {
    a->headers.clear();  // a new response (after a redirect or a 100 Continue)
    a->header_bytes = 0;
    auto sp = t.find(' ');
    if (sp != std::string_view::npos) a->status = std::atol(std::string(t.substr(sp + 1, 3)).c_str());
    return line.size();
  }
  a->header_bytes += line.size();
  if (a->header_bytes > kMaxResponseHeaderBytes) {
    a->headers_too_large = true;
    return 0;  // aborts the transfer (CURLE_WRITE_ERROR)
  }
  auto colon = t.find(':');
  if (colon != std::string_view::npos) {
    a->headers.emplace_back(std::string(trim(t.substr(0, colon))),
                            std::string(trim(t.substr(colon + 1))));
  }
  return line.size();
}

// True if the Content-Range header of a 206 answer starts at `offset` ("bytes START-END/TOTAL").
bool range_starts_at(const std::vector<std::pair<std::string, std::string>>& headers,
                     std::uint64_t offset) {
  for (auto it = headers.rbegin(); it != headers.rend(); ++it) {
    if (!iequals(it->first, "Content-Range")) continue;
    std::string_view v = it->second;
    if (v.substr(0, 6) != "bytes ") return false;
    v.remove_prefix(6);
    std::uint64_t start = 0;
    std::size_t i = 0;
    for (; i < v.size() && std::isdigit(static_cast<unsigned char>(v[i])); ++i)
      start = start * 10 + static_cast<std::uint64_t>(v[i] - '0');
    return i > 0 && i < v.size() && v[i] == '-' && start == offset;
  }
  return false;
}

bool write_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) {
  auto* a = static_cast<Attempt*>(user);
  std::size_t n = size * count;
  if (!a->decided) {
    a->decided = true;
    long code = 0;
    curl_easy_getinfo(a->curl, CURLINFO_RESPONSE_CODE, &code);
    a->status = code;
    a->to_target = code >= 200 && code < 300;
    if (a->to_target && code == 206 && a->offset > 0 && !range_starts_at(a->headers, a->offset)) {
      // Appending a range that does not start where the file ends would corrupt it.
      a->range_mismatch = true;
      return 0;
    }
    if (a->to_target && a->fd >= 0 && (code != 206 || a->offset == 0)) {
      // Full body: start the file over (also when the server ignored our Range header).
      if (::ftruncate(a->fd, 0) != 0 || ::lseek(a->fd, 0, SEEK_SET) != 0) {
        a->file_error = true;
        a->file_error_text = std::strerror(errno);
        return 0;
      }
      a->offset = 0;
    }
  }
  if (!a->to_target) {
    if (a->error_body.size() < kErrorBodyCap)
      a->error_body.append(data, std::min(n, kErrorBodyCap - a->error_body.size()));
    return n;
  }
  if (a->max_bytes > 0 && a->offset + a->written + n > a->max_bytes) {
    a->too_large = true;
    return 0;
  }
  if (a->fd >= 0) {
    if (!write_all(a->fd, data, n)) {
      a->file_error = true;
      a->file_error_text = std::strerror(errno);
      return 0;
    }
  } else if (a->memory) {
    a->memory->append(data, n);
  }
  a->written += n;
  return n;
}

int on_progress(void* user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t, curl_off_t) {
  auto* a = static_cast<Attempt*>(user);
  if (a->cancel && a->cancel->load()) return 1;
  if (a->progress && *a->progress && a->to_target) {
    std::uint64_t total = dltotal > 0 ? a->offset + static_cast<std::uint64_t>(dltotal) : 0;
    (*a->progress)(a->offset + static_cast<std::uint64_t>(std::max<curl_off_t>(dlnow, 0)), total);
  }
  return 0;
}

HttpFailure classify(CURLcode rc, const Attempt& a) {
  switch (rc) {
    case CURLE_OK:
      return HttpFailure::kNone;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
      return HttpFailure::kConnect;
    case CURLE_OPERATION_TIMEDOUT:
      return HttpFailure::kTimeout;
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return HttpFailure::kDropped;
    case CURLE_FILESIZE_EXCEEDED:
      return HttpFailure::kTooLarge;
    case CURLE_WRITE_ERROR:
      if (a.too_large || a.headers_too_large) return HttpFailure::kTooLarge;
      if (a.file_error) return HttpFailure::kFile;
      return HttpFailure::kOther;  // includes a 206 for another range than requested
    case CURLE_TOO_MANY_REDIRECTS:
      return HttpFailure::kTooManyRedirects;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
      return HttpFailure::kProtocol;
    case CURLE_ABORTED_BY_CALLBACK:
      return HttpFailure::kCancelled;
    default:
      return HttpFailure::kOther;
  }
}

long retry_after_ms(const HttpResponse& r) {
  auto v = r.header("Retry-After");
  if (!v || v->empty() || !std::all_of(v->begin(), v->end(), ::isdigit)) return -1;
  return std::atol(v->c_str()) * 1000;
}

void sleep_ms(long ms, const std::atomic<bool>* cancel) {
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < end) {
    if (cancel && cancel->load()) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min<long>(ms, 20)));
  }
}

enum class Mode { kHead, kMemory, kFile };

HttpResponse perform(Mode mode, const std::string& url, const HttpOptions& o,
                     const std::filesystem::path* path, const ProgressFn& progress, bool resume) {
  http_global_init();
  HttpResponse out;
  int fd = -1;
  if (mode == Mode::kFile) {
    fd = ::open(path->c_str(), O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
      out.failure = HttpFailure::kFile;
      out.error = path->string() + ": cannot open for writing: " + std::strerror(errno);
      return out;
    }
  }
  std::uint64_t next_offset = 0;
  if (fd >= 0 && resume) {
    struct stat st{};
    if (::fstat(fd, &st) == 0) next_offset = static_cast<std::uint64_t>(st.st_size);
  }
  const std::string agent = o.user_agent.empty() ? std::string("mmembed/") + MMEMBED_VERSION
                                                 : o.user_agent;
  long delay = o.backoff_ms;
  bool range_refused = false;
  for (int attempt = 0; attempt <= o.retries; ++attempt) {
    CURL* curl = curl_easy_init();
    if (!curl) {
      out.failure = HttpFailure::kOther;
      out.error = "curl_easy_init failed";
      break;
    }
    Attempt a;
    a.curl = curl;
    a.fd = fd;
    a.offset = next_offset;
    a.max_bytes = o.max_bytes;
    a.progress = &progress;
    a.cancel = o.cancel;
    std::string memory;
    if (mode == Mode::kMemory) a.memory = &memory;
    if (fd >= 0 && a.offset > 0 && ::lseek(fd, 0, SEEK_END) < 0) a.offset = 0;

    char errbuf[CURL_ERROR_SIZE] = {0};
    curl_slist* headers = nullptr;
    for (const auto& h : o.headers) headers = curl_slist_append(headers, h.c_str());
    std::string range;
    if (a.offset > 0) {
      range = "Range: bytes=" + std::to_string(a.offset) + "-";
      headers = curl_slist_append(headers, range.c_str());
    }
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, agent.c_str());
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, o.connect_timeout_ms);
    if (o.timeout_ms > 0) curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, o.timeout_ms);
    if (o.low_speed_time_s > 0) {
      curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, o.low_speed_bytes);
      curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, o.low_speed_time_s);
    }
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, o.follow_redirects ? 1L : 0L);
    curl_easy_setopt(curl, CURLOPT_MAXREDIRS, static_cast<long>(o.max_redirects));
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, o.protocols.c_str());
    curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, o.protocols.c_str());
#else
    long mask = 0;
    if (o.protocols.find("https") != std::string::npos) mask |= CURLPROTO_HTTPS;
    if (o.protocols.find("http,") != std::string::npos || o.protocols == "http") mask |= CURLPROTO_HTTP;
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS, mask);
    curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS, mask);
#endif
    if (o.max_bytes > 0 && a.offset < o.max_bytes)
      curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE,
                       static_cast<curl_off_t>(o.max_bytes - a.offset));
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &a);
    if (mode == Mode::kHead) {
      curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    } else {
      curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
      curl_easy_setopt(curl, CURLOPT_WRITEDATA, &a);
    }
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &a);

    CURLcode rc = curl_easy_perform(curl);
    long code = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    char* eff = nullptr;
    curl_easy_getinfo(curl, CURLINFO_EFFECTIVE_URL, &eff);

    out = HttpResponse{};
    out.attempts = attempt + 1;
    out.status = code;
    out.url = eff ? eff : url;
    out.headers = std::move(a.headers);
    out.failure = classify(rc, a);
    if (out.failure != HttpFailure::kNone) {
      if (a.headers_too_large || (rc == CURLE_OUT_OF_MEMORY && !a.decided)) {
        // libcurl reports a single header line over its own 100 KB limit as "Out of memory".
        out.failure = HttpFailure::kTooLarge;
        out.error = "response headers larger than the limit of " +
                    std::to_string(kMaxResponseHeaderBytes) +
                    " bytes (or one header line over 100 KB)";
      } else if (out.failure == HttpFailure::kTooLarge) {
        out.error = "larger than the limit of " + std::to_string(o.max_bytes) + " bytes";
      } else if (a.range_mismatch) {
        out.error = "the server answered a Range request with another range";
      } else if (out.failure == HttpFailure::kFile) {
        out.error = path->string() + ": write failed: " + a.file_error_text;
      } else {
        out.error = errbuf[0] ? errbuf : curl_easy_strerror(rc);
      }
    }
    if (mode == Mode::kMemory) {
      out.body = a.to_target ? std::move(memory) : std::move(a.error_body);
    } else {
      out.body = std::move(a.error_body);
    }
    // What the file holds now: the continued prefix plus what this attempt wrote.
    if (fd >= 0 && a.to_target) next_offset = a.offset + a.written;
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);

    if (mode == Mode::kFile && out.failure == HttpFailure::kNone && out.status == 416 &&
        next_offset > 0 && !range_refused) {
      // The server cannot serve our range (the partial file is stale): start over, once.
      range_refused = true;
      next_offset = 0;
      --attempt;
      continue;
    }
    if (out.ok() || !http_retryable(out) || attempt == o.retries) break;
    if (o.cancel && o.cancel->load()) break;
    long wait = delay;
    long after = retry_after_ms(out);
    if (after >= 0) wait = after;
    sleep_ms(std::min(wait, o.backoff_max_ms), o.cancel);
    delay = std::min(delay * 2, o.backoff_max_ms);
  }
  if (fd >= 0) {
    struct stat st{};
    if (::fstat(fd, &st) == 0) out.bytes = static_cast<std::uint64_t>(st.st_size);
    ::close(fd);
  } else if (mode == Mode::kMemory && out.ok()) {
    out.bytes = out.body.size();
  }
  return out;
}

}  // namespace

void http_global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::optional<std::string> HttpResponse::header(std::string_view name) const {
  for (auto it = headers.rbegin(); it != headers.rend(); ++it) {
    if (iequals(it->first, name)) return it->second;
  }
  return std::nullopt;
}

std::string HttpResponse::describe() const {
  switch (failure) {
    case HttpFailure::kNone:
      return "HTTP " + std::to_string(status);
    case HttpFailure::kConnect:
      return "cannot connect: " + error;
    case HttpFailure::kTimeout:
      return "timeout: " + error;
    case HttpFailure::kDropped:
      return "connection dropped: " + error;
    case HttpFailure::kTooLarge:
      return "too large: " + error;
    case HttpFailure::kTooManyRedirects:
      return "too many redirects: " + error;
    case HttpFailure::kProtocol:
      return "protocol not allowed or bad URL: " + error;
    case HttpFailure::kCancelled:
      return "cancelled";
    case HttpFailure::kFile:
      return error;
    case HttpFailure::kOther:
      return error;
  }
  return error;
}

bool http_retryable(const HttpResponse& r) {
  switch (r.failure) {
    case HttpFailure::kConnect:
    case HttpFailure::kTimeout:
    case HttpFailure::kDropped:
      return true;
    case HttpFailure::kNone:
      return r.status >= 500 || r.status == 429;
    default:
      return false;
  }
}

HttpResponse http_head(const std::string& url, const HttpOptions& options) {
  return perform(Mode::kHead, url, options, nullptr, {}, false);
}

HttpResponse http_get(const std::string& url, const HttpOptions& options) {
  return perform(Mode::kMemory, url, options, nullptr, {}, false);
}

HttpResponse http_download(const std::string& url, const std::filesystem::path& path,
                           const HttpOptions& options, const ProgressFn& progress, bool resume) {
  return perform(Mode::kFile, url, options, &path, progress, resume);
}

std::string url_host(std::string_view url) {
  auto scheme = url.find("://");
  if (scheme == std::string_view::npos) return "";
  std::string_view rest = url.substr(scheme + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  auto at = rest.rfind('@');
  if (at != std::string_view::npos) rest = rest.substr(at + 1);
  std::string host(rest);
  for (auto& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return host;
}

bool is_http_url(std::string_view url) {
  auto starts = [&](std::string_view p) {
    return url.size() >= p.size() && iequals(url.substr(0, p.size()), p);
  };
  return starts("http://") || starts("https://");
}

void run_parallel(std::size_t n, int jobs, const std::function<void(std::size_t)>& task) {
  if (n == 0) return;
  std::size_t workers = std::clamp<std::size_t>(jobs > 0 ? static_cast<std::size_t>(jobs) : 1, 1, n);
  std::atomic<std::size_t> next{0};
  std::exception_ptr first;
  std::mutex mu;
  auto work = [&] {
    for (std::size_t i; (i = next.fetch_add(1)) < n;) {
      try {
        task(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (!first) first = std::current_exception();
      }
    }
  };
  if (workers == 1) {
    work();
  } else {
    http_global_init();
    std::vector<std::thread> threads;
    threads.reserve(workers);
    for (std::size_t w = 0; w < workers; ++w) threads.emplace_back(work);
    for (auto& t : threads) t.join();
  }
  if (first) std::rethrow_exception(first);
}

}  // namespace mmembed::hub
