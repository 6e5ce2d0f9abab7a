// mmembed error types.
//
// Two tiers of failure:
//  - a caller's error (bad file, bad shape, unknown option, corrupt image) throws one of the
//    exception types below; the message names the object, what was expected and what was found;
//  - a broken internal invariant is a bug: MMEMBED_ASSERT aborts with file and line.
//
//   try { auto ckpt = mmembed::io::open_checkpoint("model_dir"); }
//   catch (const mmembed::FormatError& e) { std::cerr << e.what() << "\n"; }
#pragma once

#include <stdexcept>
#include <string>

namespace mmembed {

// Base of every error mmembed throws on purpose.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// A file or directory could not be opened, read, mapped or written.
class IoError : public Error {
 public:
  using Error::Error;
};

// A file was read but its contents are malformed (bad header, bad offsets, bad pickle...).
class FormatError : public Error {
 public:
  using Error::Error;
};

// A tensor had a shape or dtype other than the one required.
class ShapeError : public Error {
 public:
  using Error::Error;
};

// A caller passed an invalid value (option, argument, name).
class InvalidArgument : public Error {
 public:
  using Error::Error;
};

// Valid input that this build does not support (dtype, format version, model variant).
class Unsupported : public Error {
 public:
  using Error::Error;
};

}  // namespace mmembed
