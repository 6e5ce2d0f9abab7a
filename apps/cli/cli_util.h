// Small text helpers shared by the CLI commands.
#pragma once

#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace mmembed::cli {

// --image-backend pil|torchvision (default pil) on a command that loads a model; pass the
// string to mmembed::parse_image_backend.
void add_image_backend_option(CLI::App* cmd, std::string* backend);

// The lines of a text file (a trailing '\r' removed). IoError naming the path and the reason
// when it cannot be opened.
std::vector<std::string> read_lines(const std::string& path);

// A CSV field: quoted (RFC 4180, quotes doubled) when it holds a comma, a quote or a newline.
std::string csv_field(const std::string& s);

}  // namespace mmembed::cli
