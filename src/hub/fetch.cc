#include "hub/fetch.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <map>
#include <random>
#include <system_error>
#include <thread>

#include "core/file.h"
#include "hub/sha256.h"
#include "mmembed/error.h"

namespace mmembed::hub {
namespace {

namespace fs = std::filesystem;

const char* const kFormats[] = {"jpeg", "png", "webp", "gif", "bmp"};

std::string read_range(const fs::path& p, std::int64_t offset, std::size_t n) {
  InputFile in = InputFile::open(p.string());
  const auto size = static_cast<std::int64_t>(in.size());
  if (offset < 0) offset = std::max<std::int64_t>(0, size + offset);
  return in.read_at(static_cast<std::uint64_t>(offset), n);
}

std::uint32_t le32(std::string_view s, std::size_t at) {
  return std::uint32_t(static_cast<unsigned char>(s[at])) |
         (std::uint32_t(static_cast<unsigned char>(s[at + 1])) << 8) |
         (std::uint32_t(static_cast<unsigned char>(s[at + 2])) << 16) |
         (std::uint32_t(static_cast<unsigned char>(s[at + 3])) << 24);
}

std::string printable_prefix(std::string_view head) {
  std::string s;
  for (char c : head.substr(0, 16)) {
    unsigned char u = static_cast<unsigned char>(c);
    if (std::isprint(u)) {
      s.push_back(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      s += buf;
    }
  }
  return s;
}

std::string temp_suffix() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[40];
  std::snprintf(buf, sizeof buf, ".%d.%016llx.part", static_cast<int>(::getpid()),
                static_cast<unsigned long long>(rng()));
  return buf;
}

std::string json_escape_free_truncate(std::string s) {
  if (s.size() > 300) s = s.substr(0, 300) + "...";
  return s;
}

}  // namespace

std::string url_cache_key(const std::string& url) { return sha256_hex(url); }

std::string extension_for(const std::string& format) {
  return format == "jpeg" ? "jpg" : format;
}

std::string sniff_image(std::string_view h) {
  auto starts = [&](std::string_view p) { return h.size() >= p.size() && h.substr(0, p.size()) == p; };
  if (starts("\xFF\xD8\xFF")) return "jpeg";
  if (starts("\x89PNG\r\n\x1A\n")) return "png";
  if (h.size() >= 12 && h.substr(0, 4) == "RIFF" && h.substr(8, 4) == "WEBP") return "webp";
  if (starts("GIF87a") || starts("GIF89a")) return "gif";
  if (h.size() >= 26 && starts("BM")) return "bmp";
  return "";
}

bool looks_like_html(std::string_view h) {
  std::size_t i = 0;
  if (h.size() >= 3 && h.substr(0, 3) == "\xEF\xBB\xBF") i = 3;
  while (i < h.size() && std::isspace(static_cast<unsigned char>(h[i]))) ++i;
  std::string lower;
  for (std::size_t k = i; k < h.size() && k < i + 64; ++k)
    lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(h[k]))));
  return lower.rfind("<!doctype", 0) == 0 || lower.rfind("<html", 0) == 0 ||
         lower.rfind("<?xml", 0) == 0 || lower.rfind("<head", 0) == 0 ||
         lower.rfind("<body", 0) == 0 || lower.rfind("<!--", 0) == 0;
}

std::string check_image_complete(const fs::path& path, const std::string& format) {
  std::error_code ec;
  std::uint64_t size = fs::file_size(path, ec);
  if (ec) return "cannot read the downloaded file: " + ec.message();
  if (format == "jpeg") {
    // Markers cannot occur inside entropy-coded data (0xFF is stuffed), so an EOI near the end
    // means the scan data arrived; trailing bytes after it are tolerated.
    std::string tail = read_range(path, -1024, 1024);
    if (tail.find("\xFF\xD9") == std::string::npos)
      return "truncated JPEG: no end-of-image marker in the last 1 KiB";
    return "";
  }
  if (format == "png") {
    std::string tail = read_range(path, -64, 64);
    if (tail.find("IEND") == std::string::npos) return "truncated PNG: no IEND chunk at the end";
    return "";
  }
  if (format == "webp") {
    std::string head = read_range(path, 0, 12);
    std::uint64_t riff = head.size() == 12 ? le32(head, 4) : 0;
    if (riff + 8 > size) return "truncated WebP: RIFF size " + std::to_string(riff + 8) +
                                " bytes, file has " + std::to_string(size);
    return "";
  }
  if (format == "gif") {
    std::string tail = read_range(path, -1, 1);
    if (tail != ";") return "truncated GIF: no trailer byte";
    return "";
  }
  if (format == "bmp") {
    std::string head = read_range(path, 0, 6);
    std::uint64_t declared = head.size() == 6 ? le32(head, 2) : 0;
    if (declared > size) return "truncated BMP: header says " + std::to_string(declared) +
                                " bytes, file has " + std::to_string(size);
    return "";
  }
  return "unknown image format";
}

std::vector<FetchOutcome> fetch_urls(const std::vector<std::string>& urls, const fs::path& dir,
                                     const FetchOptions& options) {
  if (options.jobs < 1 || options.jobs > kMaxFetchJobs) {
    throw InvalidArgument("fetch: jobs " + std::to_string(options.jobs) +
                          " is out of range (1 to " + std::to_string(kMaxFetchJobs) + ")");
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw IoError(dir.string() + ": cannot create folder: " + ec.message());

  // Unique URLs, in first-seen order.
  std::map<std::string, std::size_t> index;
  std::vector<std::string> unique;
  std::vector<std::size_t> slot(urls.size());
  for (std::size_t i = 0; i < urls.size(); ++i) {
    auto [it, inserted] = index.emplace(urls[i], unique.size());
    if (inserted) unique.push_back(urls[i]);
    slot[i] = it->second;
  }
  std::vector<FetchOutcome> done(unique.size());
  ProgressBar bar("fetch", unique.size(), ProgressBar::Unit::kCount,
                  progress_display(options.progress), "images");

  run_parallel(unique.size(), options.jobs, [&](std::size_t u) {
    const std::string& url = unique[u];
    FetchOutcome& out = done[u];
    const std::string key = url_cache_key(url);
    std::error_code e;
    for (const char* f : kFormats) {
      fs::path p = dir / (key + "." + extension_for(f));
      if (fs::is_regular_file(p, e)) {
        out.ok = true;
        out.cached = true;
        out.path = p;
        out.format = f;
        out.bytes = fs::file_size(p, e);
        bar.add_done(1);
        return;
      }
    }
    if (!is_http_url(url)) {
      out.reason = "unsupported URL scheme: only http:// and https:// are fetched";
      bar.add_done(1, 1);
      return;
    }
    fs::path tmp = dir / (key + temp_suffix());
    std::uint64_t last = 0;
    HttpResponse r = http_download(
        url, tmp, options.http,
        [&](std::uint64_t have, std::uint64_t) {
          if (have > last) {
            bar.add_bytes(have - last);
            last = have;
          }
        },
        /*resume=*/false);
    out.status = r.status;
    out.attempts = r.attempts;
    auto fail = [&](std::string reason) {
      out.reason = json_escape_free_truncate(std::move(reason));
      fs::remove(tmp, e);
      bar.add_done(1, 1);
    };
    if (r.failure != HttpFailure::kNone) return fail(r.describe());
    if (r.status < 200 || r.status > 299) {
      std::string why = "HTTP " + std::to_string(r.status);
      if (r.attempts > 1) why += " after " + std::to_string(r.attempts) + " attempts";
      return fail(why);
    }
    if (r.bytes == 0) return fail("empty response (HTTP " + std::to_string(r.status) + ")");
    std::string head = read_range(tmp, 0, 512);
    std::string format = sniff_image(head);
    if (format.empty()) {
      std::string type = r.header("Content-Type").value_or("none");
      if (looks_like_html(head) || type.find("html") != std::string::npos)
        return fail("not an image: the server answered HTTP " + std::to_string(r.status) +
                    " with an HTML page (Content-Type " + type + ")");
      return fail("not an image: unknown content starting with \"" + printable_prefix(head) +
                  "\" (Content-Type " + type + ")");
    }
    if (std::string bad = check_image_complete(tmp, format); !bad.empty()) return fail(bad);
    fs::path final_path = dir / (key + "." + extension_for(format));
    fs::rename(tmp, final_path, e);
    if (e) return fail("cannot store " + final_path.string() + ": " + e.message());
    out.ok = true;
    out.path = final_path;
    out.format = format;
    out.bytes = r.bytes;
    bar.add_done(1);
  });
  bar.finish();

  std::vector<FetchOutcome> result(urls.size());
  for (std::size_t i = 0; i < urls.size(); ++i) result[i] = done[slot[i]];
  return result;
}

}  // namespace mmembed::hub
