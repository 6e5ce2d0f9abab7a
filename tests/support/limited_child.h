// Runs a piece of code in a forked child under an address-space limit and an alarm, so that a
// regression that reads without end, allocates without bound or blocks forever (a FIFO open)
// fails a test in seconds instead of hanging it or taking the machine's memory.
//
//   std::string what = error_in_limited_child([&] { read_input_file(fifo, 1 << 20); });
//   EXPECT_NE(what.find("is a FIFO"), std::string::npos) << what;
#pragma once

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <string>

#include "mmembed/error.h"

namespace mmembed::testing_support {

// The message of the mmembed::Error `f` threw in the child (allowed `max_bytes` of address
// space beyond what it has mapped when it starts, and `seconds` to run), or a line that starts
// with "!" saying what happened instead ("!no error", "!other exception: ...",
// "!killed by signal 14").
inline std::string error_in_limited_child(const std::function<void()>& f,
                                          unsigned long long max_bytes = 1ull << 30,
                                          unsigned seconds = 10) {
  int pipefd[2];
  if (::pipe(pipefd) != 0) return "!pipe failed";
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(pipefd[0]);
    // The limit is what the child has mapped already plus the budget: under AddressSanitizer
    // the process has reserved terabytes of shadow memory at start, and an absolute limit
    // would leave it no room for any allocation.
    unsigned long long mapped = 0;
    if (std::FILE* statm = std::fopen("/proc/self/statm", "r")) {
      unsigned long long pages = 0;
      if (std::fscanf(statm, "%llu", &pages) == 1) {
        mapped = pages * static_cast<unsigned long long>(::sysconf(_SC_PAGESIZE));
      }
      std::fclose(statm);
    }
    rlimit as{mapped + max_bytes, mapped + max_bytes};
    ::setrlimit(RLIMIT_AS, &as);
    ::alarm(seconds);
    std::string msg;
    try {
      f();
      msg = "!no error";
    } catch (const Error& e) {
      msg = e.what();
    } catch (const std::exception& e) {
      msg = std::string("!other exception: ") + e.what();
    }
    (void)!::write(pipefd[1], msg.data(), msg.size());
    ::_exit(0);
  }
  ::close(pipefd[1]);
  std::string msg;
  char buf[512];
  for (ssize_t n; (n = ::read(pipefd[0], buf, sizeof buf)) > 0;) msg.append(buf, n);
  ::close(pipefd[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFSIGNALED(status)) {
    return "!killed by signal " + std::to_string(WTERMSIG(status)) + " (" +
           ::strsignal(WTERMSIG(status)) + ")";
  }
  return msg;
}

}  // namespace mmembed::testing_support
