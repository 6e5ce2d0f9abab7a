#include "cli_util.h"

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstring>
#include <sstream>

#include "core/check.h"
#include "core/file.h"
#include "mmembed/error.h"

namespace mmembed::cli {

void add_image_backend_option(CLI::App* cmd, std::string* backend) {
  cmd->add_option("--image-backend", *backend,
                  "Image preprocessing to reproduce: pil (transformers 4.x, and 5 with "
                  "backend=\"pil\": Pillow resize, bit-exact) or torchvision (transformers 5's "
                  "default processors when torchvision is installed); docs/numerics.md")
      ->check(CLI::IsMember({"pil", "torchvision"}))
      ->capture_default_str();
}

std::vector<std::string> read_lines(const std::string& path) {
  std::istringstream in(read_input_file(path, kMaxTextDataFileBytes));
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    out.push_back(line);
  }
  return out;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

}  // namespace mmembed::cli
