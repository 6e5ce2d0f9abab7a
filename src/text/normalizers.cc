#include <cstring>

#include "core/check.h"
#include "text/pipeline.h"
#include "text/unicode.h"

namespace mmembed::text::detail {

namespace {

class UnicodeForm final : public Normalizer {
 public:
  explicit UnicodeForm(NormalForm form) : form_(form) {}
  void normalize(std::string& s) const override {
    switch (form_) {
      case NormalForm::kNfc: s = unicode::nfc(s); break;
      case NormalForm::kNfd: s = unicode::nfd(s); break;
      case NormalForm::kNfkc: s = unicode::nfkc(s); break;
      case NormalForm::kNfkd: s = unicode::nfkd(s); break;
    }
  }

 private:
  NormalForm form_;
};

class Lowercase final : public Normalizer {
 public:
  void normalize(std::string& s) const override { s = unicode::lowercase(s); }
};

class Strip final : public Normalizer {
 public:
  Strip(bool left, bool right) : left_(left), right_(right) {}
  void normalize(std::string& s) const override {
    std::u32string u = unicode::to_u32(s);
    std::size_t b = 0, e = u.size();
    if (left_)
      while (b < e && unicode::is_white_space(u[b])) ++b;
    if (right_)
      while (e > b && unicode::is_white_space(u[e - 1])) --e;
    s = unicode::to_utf8(std::u32string_view(u).substr(b, e - b));
  }

 private:
  bool left_, right_;
};

class Prepend final : public Normalizer {
 public:
  explicit Prepend(std::string prefix) : prefix_(std::move(prefix)) {}
  void normalize(std::string& s) const override {
    if (!s.empty()) s.insert(0, prefix_);
  }

 private:
  std::string prefix_;
};

class Replace final : public Normalizer {
 public:
  Replace(const std::string& pattern, bool is_regex, std::string content)
      : literal_(pattern), content_(std::move(content)) {
    if (is_regex) regex_ = std::make_unique<Regex>(pattern, "Replace normalizer");
  }
  void normalize(std::string& s) const override {
    std::vector<std::pair<std::size_t, std::size_t>> matches;
    if (regex_) {
      regex_->find_all(s, matches);
    } else if (!literal_.empty()) {
      for (std::size_t pos = s.find(literal_); pos != std::string::npos;
           pos = s.find(literal_, pos + literal_.size()))
        matches.emplace_back(pos, pos + literal_.size());
    }
    if (matches.empty()) return;
    std::string out;
    out.reserve(s.size());
    std::size_t last = 0;
    for (auto [b, e] : matches) {
      out.append(s, last, b - last);
      out += content_;
      last = e;
    }
    out.append(s, last, std::string::npos);
    s = std::move(out);
  }

 private:
  std::string literal_;
  std::unique_ptr<Regex> regex_;
  std::string content_;
};

class Sequence final : public Normalizer {
 public:
  explicit Sequence(std::vector<std::unique_ptr<Normalizer>> parts) : parts_(std::move(parts)) {}
  void normalize(std::string& s) const override {
    for (const auto& p : parts_) p->normalize(s);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> parts_;
};

// The "Chinese character" ranges of tokenizers 0.19's BertNormalizer (normalizers/bert.rs),
// including its 0x2B920 lower bound for the sixth range (BERT's Python code says 0x2B820).
bool is_chinese_char(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
         (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

class BertNormalizer final : public Normalizer {
 public:
  BertNormalizer(bool clean_text, bool handle_chinese_chars, bool strip_accents, bool lowercase)
      : clean_text_(clean_text),
        handle_chinese_chars_(handle_chinese_chars),
        strip_accents_(strip_accents),
        lowercase_(lowercase) {}

  void normalize(std::string& s) const override {
    if (clean_text_ || handle_chinese_chars_) {
      std::string out;
      out.reserve(s.size() + 8);
      for (std::size_t i = 0; i < s.size();) {
        char32_t c = unicode::decode(s, i);
        if (clean_text_) {
          const bool tab_nl_cr = c == '\t' || c == '\n' || c == '\r';
          if (c == 0 || c == 0xFFFD || (!tab_nl_cr && unicode::is_other_cc_cf_co(c))) continue;
          if (tab_nl_cr || unicode::is_white_space(c)) c = ' ';
        }
        if (handle_chinese_chars_ && is_chinese_char(c)) {
          out.push_back(' ');
          unicode::append_utf8(out, c);
          out.push_back(' ');
        } else {
          unicode::append_utf8(out, c);
        }
      }
      s = std::move(out);
    }
    if (strip_accents_) {
      std::string d = unicode::nfd(s);
      std::string out;
      out.reserve(d.size());
      for (std::size_t i = 0; i < d.size();) {
        char32_t c = unicode::decode(d, i);
        if (!unicode::is_mark_nonspacing(c)) unicode::append_utf8(out, c);
      }
      s = std::move(out);
    }
    if (lowercase_) s = unicode::lowercase(s);
  }

 private:
  bool clean_text_, handle_chinese_chars_, strip_accents_, lowercase_;
};

}  // namespace

std::unique_ptr<Normalizer> make_unicode_normalizer(NormalForm form) {
  return std::make_unique<UnicodeForm>(form);
}
std::unique_ptr<Normalizer> make_lowercase() { return std::make_unique<Lowercase>(); }
std::unique_ptr<Normalizer> make_strip(bool left, bool right) {
  return std::make_unique<Strip>(left, right);
}
std::unique_ptr<Normalizer> make_prepend(std::string prefix) {
  return std::make_unique<Prepend>(std::move(prefix));
}
std::unique_ptr<Normalizer> make_replace(const std::string& pattern, bool is_regex,
                                         std::string content) {
  return std::make_unique<Replace>(pattern, is_regex, std::move(content));
}
std::unique_ptr<Normalizer> make_sequence(std::vector<std::unique_ptr<Normalizer>> parts) {
  return std::make_unique<Sequence>(std::move(parts));
}
std::unique_ptr<Normalizer> make_bert_normalizer(bool clean_text, bool handle_chinese_chars,
                                                 bool strip_accents, bool lowercase) {
  return std::make_unique<BertNormalizer>(clean_text, handle_chinese_chars, strip_accents,
                                          lowercase);
}

}  // namespace mmembed::text::detail
