// Parallel download of image URLs into a folder, for `mmembed fetch`.
//
// Each URL is stored once as <dir>/<sha256(url)>.<ext>, the extension taken from the content's
// magic bytes, so a rerun finds it and downloads nothing. A download goes to a temporary file
// in the same folder and is renamed only after it passed the checks (HTTP 2xx, size limit, a
// known image signature, a complete file structure); a failed item never stops the others.
//
//   hub::FetchOptions o;  o.jobs = 8;  o.http.max_bytes = 50'000'000;
//   auto out = hub::fetch_urls({"https://example.org/cat.jpg"}, "images", o);
//   if (!out[0].ok) std::cerr << out[0].reason << "\n";
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "hub/http.h"
#include "hub/progress.h"

namespace mmembed::hub {

// Most parallel downloads: each is a thread and a connection; 256 is the CLI's --jobs maximum.
inline constexpr int kMaxFetchJobs = 256;

struct FetchOptions {
  int jobs = 8;  // 1..kMaxFetchJobs; fetch_urls throws InvalidArgument outside that range
  HttpOptions http;  // timeouts, retries, backoff, max_bytes, max_redirects, protocols
  ProgressMode progress = ProgressMode::kAuto;
};

struct FetchOutcome {
  bool ok = false;
  bool cached = false;          // found in the folder, nothing downloaded
  std::filesystem::path path;   // the stored file (ok)
  std::string format;           // "jpeg", "png", "webp", "gif", "bmp"
  std::uint64_t bytes = 0;
  long status = 0;              // last HTTP status (0: none)
  int attempts = 0;
  std::string reason;           // why it failed (not ok)
};

// One outcome per URL, in order. Creates `dir`. Identical URLs are downloaded once.
std::vector<FetchOutcome> fetch_urls(const std::vector<std::string>& urls,
                                     const std::filesystem::path& dir,
                                     const FetchOptions& options);

// The image format announced by the first bytes ("jpeg", "png", "webp", "gif", "bmp"), or "".
std::string sniff_image(std::string_view head);
// True if the first bytes look like an HTML or XML document.
bool looks_like_html(std::string_view head);
// "" if the file's structure is complete for its format (JPEG ends with an EOI marker, PNG
// with IEND, the RIFF size of a WebP matches, GIF ends with its trailer, BMP is not shorter
// than its header says), else the reason.
std::string check_image_complete(const std::filesystem::path& path, const std::string& format);
// "jpg", "png", "webp", "gif", "bmp".
std::string extension_for(const std::string& format);

// Name of the cached file for a URL, without extension: lowercase hex SHA-256 of the URL.
std::string url_cache_key(const std::string& url);

}  // namespace mmembed::hub
