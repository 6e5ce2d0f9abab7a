// The names of the input kinds (include/mmembed/embedder.h), here in core so that every layer
// that stores or parses a kind (embed, index, the CLI) shares one spelling.
#include "core/check.h"
#include "mmembed/embedder.h"

namespace mmembed {

const char* input_kind_name(InputKind kind) {
  switch (kind) {
    case InputKind::kText:
      return "text";
    case InputKind::kImage:
      return "image";
    case InputKind::kPair:
      return "pair";
  }
  return "?";
}

InputKind parse_input_kind(const std::string& name) {
  for (InputKind k : {InputKind::kText, InputKind::kImage, InputKind::kPair}) {
    if (name == input_kind_name(k)) return k;
  }
  throw InvalidArgument(str_cat("'", name, "' is not image, text or pair"));
}

}  // namespace mmembed
