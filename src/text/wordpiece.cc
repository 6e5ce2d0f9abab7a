#include "core/check.h"
#include "text/pipeline.h"
#include "text/unicode.h"

namespace mmembed::text::detail {

WordPiece::WordPiece(WordPieceConfig config, const std::string& origin)
    : config_(std::move(config)) {
  auto unk = vocab_find(config_.vocab, config_.unk_token);
  MMEMBED_CHECK(unk, FormatError, origin, ": WordPiece unk_token '", config_.unk_token,
                "' is not in the vocabulary");
  unk_id_ = *unk;
}

void WordPiece::tokenize(std::string_view word, std::vector<std::int64_t>& out) const {
  std::size_t chars = 0;
  for (std::size_t i = 0; i < word.size(); i += unicode::char_len(static_cast<unsigned char>(word[i])))
    ++chars;
  if (chars > config_.max_input_chars_per_word) {
    out.push_back(unk_id_);
    return;
  }
  const std::size_t mark = out.size();
  std::string candidate;
  std::size_t start = 0;
  while (start < word.size()) {
    std::size_t end = word.size();
    std::optional<std::int32_t> found;
    while (start < end) {
      candidate.clear();
      if (start > 0) candidate += config_.continuing_subword_prefix;
      candidate.append(word.substr(start, end - start));
      if ((found = vocab_find(config_.vocab, candidate))) break;
      // Step back one character.
      --end;
      while (end > start && (static_cast<unsigned char>(word[end]) & 0xC0) == 0x80) --end;
    }
    if (!found) {
      out.resize(mark);
      out.push_back(unk_id_);
      return;
    }
    out.push_back(*found);
    start = end;
  }
}

}  // namespace mmembed::text::detail
