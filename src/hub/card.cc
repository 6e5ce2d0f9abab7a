// The tags of a model card's YAML front matter (README.md of a Hugging Face model folder).
#include <cctype>
#include <string>
#include <vector>

#include "core/file.h"
#include "mmembed/hub.h"

namespace mmembed::hub {
namespace {

// The front matter sits at the top of the card; a longer one is not read to its end.
constexpr std::size_t kMaxFrontMatterBytes = 64 * 1024;

std::string trim(std::string s) {
  const auto not_space = [](unsigned char c) { return !std::isspace(c); };
  while (!s.empty() && !not_space(static_cast<unsigned char>(s.back()))) s.pop_back();
  std::size_t i = 0;
  while (i < s.size() && !not_space(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

std::string unquote(std::string s) {
  s = trim(std::move(s));
  if (s.size() >= 2 && (s.front() == '"' || s.front() == '\'') && s.back() == s.front())
    s = s.substr(1, s.size() - 2);
  return s;
}

}  // namespace

std::vector<std::string> model_card_tags(const std::filesystem::path& dir) {
  std::string head;
  try {
    InputFile f = InputFile::open((dir / "README.md").string());
    head = f.read_at(0, kMaxFrontMatterBytes);
  } catch (const Error&) {
    return {};  // no card, or not a readable regular file: no tags
  }
  std::vector<std::string> lines;
  for (std::size_t pos = 0; pos <= head.size();) {
    std::size_t end = head.find('\n', pos);
    if (end == std::string::npos) end = head.size();
    std::string line = head.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
    pos = end + 1;
  }
  if (lines.empty() || trim(lines[0]) != "---") return {};
  std::vector<std::string> tags;
  bool in_tags = false, closed = false;
  for (std::size_t i = 1; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    if (trim(line) == "---") {
      closed = true;
      break;
    }
    const std::string t = trim(line);
    if (in_tags && t.rfind("- ", 0) == 0) {  // block list item under "tags:"
      tags.push_back(unquote(t.substr(2)));
      continue;
    }
    in_tags = false;
    if (line.rfind("tags:", 0) != 0) continue;  // a top-level key other than tags
    const std::string value = trim(line.substr(5));
    if (value.empty()) {
      in_tags = true;
    } else if (value.front() == '[' && value.back() == ']') {  // flow list: tags: [a, b]
      const std::string inner = value.substr(1, value.size() - 2);
      for (std::size_t pos = 0; pos <= inner.size();) {
        std::size_t end = inner.find(',', pos);
        if (end == std::string::npos) end = inner.size();
        const std::string item = unquote(inner.substr(pos, end - pos));
        if (!item.empty()) tags.push_back(item);
        pos = end + 1;
      }
    } else {
      tags.push_back(unquote(value));  // tags: one
    }
  }
  return closed ? tags : std::vector<std::string>{};
}

}  // namespace mmembed::hub
