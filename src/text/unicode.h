// Unicode helpers for the tokenizers: strict UTF-8, normalization forms, case mapping and the
// character classes the reference tokenizers use. Tables come from ICU (libicu, Debian); nothing
// here hard-codes Unicode data.
//
// Which reference definition each predicate follows is written next to it, because the HF
// tokenizers (Rust) use several different notions of "whitespace" and "punctuation".
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace mmembed::text::unicode {

// Throws InvalidArgument "<what>: invalid UTF-8 at byte N: <reason>" unless `s` is well-formed
// UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF), the rule of Rust's `str`.
void validate_utf8(std::string_view s, std::string_view what);

// Decodes the code point starting at s[i] and advances i. `s` must be valid UTF-8.
char32_t decode(std::string_view s, std::size_t& i);
// Byte length of the code point whose first byte is `lead` (valid UTF-8 assumed).
inline std::size_t char_len(unsigned char lead) {
  return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
}
void append_utf8(std::string& out, char32_t c);
std::u32string to_u32(std::string_view s);
std::string to_utf8(std::u32string_view s);

// Normalization forms (ICU Normalizer2).
std::string nfc(std::string_view s);
std::string nfd(std::string_view s);
std::string nfkc(std::string_view s);
std::string nfkd(std::string_view s);

// Appends the full lowercase mapping of one code point, without context rules (Rust
// `char::to_lowercase`, used by tokenizers' Lowercase): "İ" -> "i̇", final "Σ" -> "σ".
void append_lower(std::string& out, char32_t c);
std::string lowercase(std::string_view s);

// Unicode White_Space property (Rust `char::is_whitespace`, Rust-regex `\s`).
bool is_white_space(char32_t c);
// Rust-regex `\w`: Alphabetic, M*, Nd, Pc, Join_Control.
bool is_word_char(char32_t c);
// General category Mn.
bool is_mark_nonspacing(char32_t c);
// General category P* (Pc Pd Ps Pe Pi Pf Po).
bool is_punctuation(char32_t c);
// General category Cc, Cf or Co: the `unicode_categories` crate's `is_other()`, which the
// BertNormalizer uses as "control" (it does not include Cn or Cs).
bool is_other_cc_cf_co(char32_t c);

}  // namespace mmembed::text::unicode
