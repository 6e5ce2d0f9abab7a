// Small text helpers shared by the CLI commands.
#pragma once

#include <string>
#include <vector>

namespace mmembed::cli {

// The lines of a text file (a trailing '\r' removed). IoError naming the path and the reason
// when it cannot be opened.
std::vector<std::string> read_lines(const std::string& path);

// A CSV field: quoted (RFC 4180, quotes doubled) when it holds a comma, a quote or a newline.
std::string csv_field(const std::string& s);

}  // namespace mmembed::cli
