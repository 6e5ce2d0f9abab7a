// Internal helpers for building error messages and asserting invariants.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>

#include "mmembed/error.h"

namespace mmembed {

// Concatenates any streamable values into a string: str_cat("got ", n, " tensors").
template <typename... Args>
std::string str_cat(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}

[[noreturn]] inline void assert_fail(const char* expr, const char* file, int line) {
  std::fprintf(stderr, "mmembed: internal error: assertion '%s' failed at %s:%d\n", expr, file, line);
  std::abort();
}

}  // namespace mmembed

// A broken internal invariant (a bug in mmembed, never a caller's error): aborts.
#define MMEMBED_ASSERT(expr) \
  ((expr) ? static_cast<void>(0) : ::mmembed::assert_fail(#expr, __FILE__, __LINE__))

// Throws `ExcType(str_cat(...))` when `cond` is false. For caller errors.
#define MMEMBED_CHECK(cond, ExcType, ...) \
  do {                                    \
    if (!(cond)) throw ExcType(::mmembed::str_cat(__VA_ARGS__)); \
  } while (0)
