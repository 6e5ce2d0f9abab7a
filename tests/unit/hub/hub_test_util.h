// Shared by the hub tests: one fake Hub server per test binary, its request log, temp folders.
#pragma once

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "fake_hub_server.h"
#include "hub/http.h"

namespace hubtest {

namespace fs = std::filesystem;

inline std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void write_file(const fs::path& p, const std::string& s) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << s;
}

inline std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

// A fresh temporary folder, removed at scope exit.
class TempDir {
 public:
  TempDir() {
    static int n = 0;
    path_ = fs::temp_directory_path() /
            ("mmembed-hubtest-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// The request log of the server since the last reset.
struct Request {
  std::string method, path, range, authorization, host;
};

inline std::vector<Request> requests(const FakeHub& hub) {
  mmembed::hub::HttpOptions o;
  o.retries = 0;
  auto r = mmembed::hub::http_get(hub.url("/__stats"), o);
  EXPECT_TRUE(r.ok()) << r.describe();
  std::vector<Request> out;
  for (const auto& e : nlohmann::json::parse(r.body)) {
    auto str = [&](const char* k) { return e[k].is_string() ? e[k].get<std::string>() : std::string(); };
    out.push_back({str("method"), str("path"), str("range"), str("authorization"), str("host")});
  }
  return out;
}

inline void reset(const FakeHub& hub) {
  mmembed::hub::HttpOptions o;
  o.retries = 0;
  auto r = mmembed::hub::http_get(hub.url("/__reset"), o);
  ASSERT_TRUE(r.ok()) << r.describe();
}

inline int count(const std::vector<Request>& rs, const std::string& method) {
  int n = 0;
  for (const auto& r : rs) n += r.method == method;
  return n;
}

}  // namespace hubtest
