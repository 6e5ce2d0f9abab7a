#include "text/unicode.h"

#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/ustring.h>

#include "core/check.h"

namespace mmembed::text::unicode {

void validate_utf8(std::string_view s, std::string_view what) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  std::size_t i = 0;
  auto fail = [&](const char* reason) {
    throw InvalidArgument(str_cat(what, ": invalid UTF-8 at byte ", i, ": ", reason));
  };
  while (i < n) {
    const unsigned char b = p[i];
    if (b < 0x80) {
      ++i;
      continue;
    }
    std::size_t len;
    char32_t min;
    char32_t c;
    if (b >= 0xC2 && b <= 0xDF) {
      len = 2, min = 0x80, c = b & 0x1F;
    } else if (b >= 0xE0 && b <= 0xEF) {
      len = 3, min = 0x800, c = b & 0x0F;
    } else if (b >= 0xF0 && b <= 0xF4) {
      len = 4, min = 0x10000, c = b & 0x07;
    } else if (b >= 0x80 && b <= 0xBF) {
      fail("unexpected continuation byte");
    } else {
      fail("invalid lead byte");
    }
    if (i + len > n) fail("truncated sequence");
    for (std::size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) fail("missing continuation byte");
      c = (c << 6) | (p[i + k] & 0x3F);
    }
    if (c < min) fail("overlong encoding");
    if (c >= 0xD800 && c <= 0xDFFF) fail("encoded surrogate");
    if (c > 0x10FFFF) fail("code point above U+10FFFF");
    i += len;
  }
}

char32_t decode(std::string_view s, std::size_t& i) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const unsigned char b = p[i];
  if (b < 0x80) {
    ++i;
    return b;
  }
  if (b < 0xE0) {
    char32_t c = ((b & 0x1F) << 6) | (p[i + 1] & 0x3F);
    i += 2;
    return c;
  }
  if (b < 0xF0) {
    char32_t c = ((b & 0x0F) << 12) | ((p[i + 1] & 0x3F) << 6) | (p[i + 2] & 0x3F);
    i += 3;
    return c;
  }
  char32_t c = ((b & 0x07) << 18) | ((p[i + 1] & 0x3F) << 12) | ((p[i + 2] & 0x3F) << 6) |
               (p[i + 3] & 0x3F);
  i += 4;
  return c;
}

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

std::u32string to_u32(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) out.push_back(decode(s, i));
  return out;
}

std::string to_utf8(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) append_utf8(out, c);
  return out;
}

namespace {

bool is_ascii(std::string_view s) {
  for (char ch : s)
    if (static_cast<unsigned char>(ch) >= 0x80) return false;
  return true;
}

enum class Form { kNfc, kNfd, kNfkc, kNfkd };

std::string normalize(std::string_view s, Form form) {
  if (is_ascii(s)) return std::string(s);  // ASCII is invariant under all four forms
  UErrorCode err = U_ZERO_ERROR;
  const icu::Normalizer2* n = nullptr;
  switch (form) {
    case Form::kNfc: n = icu::Normalizer2::getNFCInstance(err); break;
    case Form::kNfd: n = icu::Normalizer2::getNFDInstance(err); break;
    case Form::kNfkc: n = icu::Normalizer2::getNFKCInstance(err); break;
    case Form::kNfkd: n = icu::Normalizer2::getNFKDInstance(err); break;
  }
  MMEMBED_CHECK(U_SUCCESS(err), Unsupported, "ICU normalizer unavailable: ", u_errorName(err));
  icu::UnicodeString in = icu::UnicodeString::fromUTF8(
      icu::StringPiece(s.data(), static_cast<std::int32_t>(s.size())));
  icu::UnicodeString out = n->normalize(in, err);
  MMEMBED_CHECK(U_SUCCESS(err), InvalidArgument, "ICU normalization failed: ", u_errorName(err));
  std::string result;
  out.toUTF8String(result);
  return result;
}

}  // namespace

std::string nfc(std::string_view s) { return normalize(s, Form::kNfc); }
std::string nfd(std::string_view s) { return normalize(s, Form::kNfd); }
std::string nfkc(std::string_view s) { return normalize(s, Form::kNfkc); }
std::string nfkd(std::string_view s) { return normalize(s, Form::kNfkd); }

void append_lower(std::string& out, char32_t c) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c));
    return;
  }
  // Full mapping of a lone code point with the root locale: no context (a lone sigma is not
  // final), no language rules; one-to-many mappings (U+0130) included.
  UChar src[2];
  std::int32_t src_len = 0;
  U16_APPEND_UNSAFE(src, src_len, static_cast<UChar32>(c));
  UChar dst[8];
  UErrorCode err = U_ZERO_ERROR;
  std::int32_t n = u_strToLower(dst, 8, src, src_len, "", &err);
  if (U_FAILURE(err)) {
    append_utf8(out, c);
    return;
  }
  for (std::int32_t k = 0; k < n;) {
    UChar32 cp;
    U16_NEXT_UNSAFE(dst, k, cp);
    append_utf8(out, static_cast<char32_t>(cp));
  }
}

std::string lowercase(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) append_lower(out, decode(s, i));
  return out;
}

bool is_white_space(char32_t c) {
  if (c < 0x80) return c == ' ' || (c >= 0x09 && c <= 0x0D);
  return u_isUWhiteSpace(static_cast<UChar32>(c));
}

bool is_word_char(char32_t c) {
  const auto cp = static_cast<UChar32>(c);
  if (u_hasBinaryProperty(cp, UCHAR_ALPHABETIC) || u_hasBinaryProperty(cp, UCHAR_JOIN_CONTROL))
    return true;
  const std::int32_t mask = U_GET_GC_MASK(cp);
  return (mask & (U_GC_M_MASK | U_GC_ND_MASK | U_GC_PC_MASK)) != 0;
}

bool is_mark_nonspacing(char32_t c) {
  return u_charType(static_cast<UChar32>(c)) == U_NON_SPACING_MARK;
}

bool is_punctuation(char32_t c) { return (U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_P_MASK) != 0; }

bool is_other_cc_cf_co(char32_t c) {
  const std::int32_t mask = U_GET_GC_MASK(static_cast<UChar32>(c));
  return (mask & (U_GC_CC_MASK | U_GC_CF_MASK | U_GC_CO_MASK)) != 0;
}

}  // namespace mmembed::text::unicode
