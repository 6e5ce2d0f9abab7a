// Test helper: runs tests/support/fake_hub.py (an imitation of the Hugging Face Hub resolve
// endpoint and of an image host) on 127.0.0.1 with a port chosen by the OS.
//
//   FakeHub hub({"--repo", "org/tiny=" + dir});
//   if (!hub.ok()) GTEST_SKIP() << hub.skip_reason();
//   std::string url = hub.url("/img/cat.webp");
//
// The server stops when the object is destroyed (and by itself when the test process exits).
#pragma once

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

class FakeHub {
 public:
  explicit FakeHub(const std::vector<std::string>& args) {
    namespace fs = std::filesystem;
    // A proxy configured in the environment must not intercept requests to the local server.
    for (const char* name : {"no_proxy", "NO_PROXY"}) {
      const char* cur = std::getenv(name);
      std::string v = cur && *cur ? std::string(cur) + ",127.0.0.1,localhost" : "127.0.0.1,localhost";
      ::setenv(name, v.c_str(), 1);
    }
    std::string python = find_python();
    if (python.empty()) {
      reason_ = "python3 not found in PATH: the fake Hub server (tests/support/fake_hub.py) needs it";
      return;
    }
    dir_ = fs::temp_directory_path() /
           ("mmembed-fakehub-" + std::to_string(::getpid()) + "-" + std::to_string(counter()++));
    fs::create_directories(dir_);
    std::string port_file = (dir_ / "port").string();
    std::vector<std::string> argv_s = {python, std::string(MMEMBED_SOURCE_DIR) + "/tests/support/fake_hub.py",
                                       "--port-file", port_file};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (::posix_spawn(&pid_, python.c_str(), nullptr, nullptr, argv.data(), environ) != 0) {
      reason_ = "cannot start " + python;
      pid_ = -1;
      return;
    }
    for (int i = 0; i < 200; ++i) {
      std::ifstream in(port_file);
      if (in >> port_) return;
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        reason_ = "fake_hub.py exited at startup (see stderr)";
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    reason_ = "fake_hub.py did not report its port within 5 s";
  }

  ~FakeHub() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  FakeHub(const FakeHub&) = delete;
  FakeHub& operator=(const FakeHub&) = delete;

  bool ok() const { return port_ > 0; }
  const std::string& skip_reason() const { return reason_; }
  int port() const { return port_; }
  std::string base() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string url(const std::string& path) const { return base() + path; }

 private:
  static int& counter() {
    static int n = 0;
    return n;
  }
  static std::string find_python() {
    const char* path = std::getenv("PATH");
    std::string p = path ? path : "/usr/bin:/bin";
    std::size_t start = 0;
    while (start <= p.size()) {
      std::size_t end = p.find(':', start);
      if (end == std::string::npos) end = p.size();
      std::string cand = p.substr(start, end - start) + "/python3";
      if (::access(cand.c_str(), X_OK) == 0) return cand;
      start = end + 1;
    }
    return "";
  }

  pid_t pid_ = -1;
  int port_ = 0;
  std::string reason_;
  std::filesystem::path dir_;
};
