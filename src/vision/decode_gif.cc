// GIF through giflib: the first frame, as Pillow 11.3 opens it (GifImagePlugin, default
// LOADING_STRATEGY) and converts it with convert("RGB"). Later frames of an animation are not
// read. What Pillow does, and so what this does:
//   - The canvas is the logical screen, grown to cover the frame when the frame reaches past it.
//   - Before the frame is drawn the canvas holds the frame's transparent index (graphic control
//     extension) or else index 0; the frame's pixels are then written as they are, transparent
//     ones included.
//   - The colour table is the frame's local one, else the global one. A table that is the
//     identity grey ramp (entry i == (i, i, i) for all entries) is no palette: the image opens
//     as "L" and an index is its own grey level. So is a frame without any table.
//   - Otherwise ("P"), an index past the table's entries is black; transparency is ignored.
//   - One quirk kept: when the local table is the identity ramp and the global one is not, the
//     image opens as "L" but Pillow still attaches the global table, and load() turns the image
//     into "P" with it (Image.load's putpalette), so convert("RGB") looks indices up there.
//   - Interlaced frames are stored in their four passes and put back in row order.
//   - A byte between records that starts none of them is skipped.
// Not as Pillow: an LZW minimum code size of 12 (Pillow accepts it, giflib does not: FormatError).
#include <gif_lib.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "vision/decode_internal.h"

namespace mmembed::vision::detail {
namespace {

struct Reader {
  const std::uint8_t* data;
  std::size_t size, pos;
};

int read_bytes(GifFileType* gif, GifByteType* out, int n) {
  auto* r = static_cast<Reader*>(gif->UserData);
  const std::size_t take = std::min<std::size_t>(static_cast<std::size_t>(n), r->size - r->pos);
  std::memcpy(out, r->data + r->pos, take);
  r->pos += take;
  return static_cast<int>(take);
}

struct GifCloser {
  void operator()(GifFileType* gif) const {
    int error = 0;
    DGifCloseFile(gif, &error);
  }
};

std::string gif_error(int code) {
  const char* s = GifErrorString(code);
  return s != nullptr ? s : "unknown giflib error";
}

// Pillow's GifImageFile._is_palette_needed, inverted: every entry i is (i, i, i).
bool is_identity_grey(const ColorMapObject* map) {
  for (int i = 0; i < map->ColorCount; ++i) {
    const GifColorType& c = map->Colors[i];
    if (c.Red != i || c.Green != i || c.Blue != i) return false;
  }
  return true;
}

// GIF's variable-width LZW, with Pillow's rules (GifDecode.c) for what is broken: the first code
// after a clear code must be a literal, and a later code may be at most the next free entry
// (the entry being defined, "KwKwK"). The table stops growing at 4096 entries; the code width
// grows when the entry equal to the current mask is added, up to 12 bits. Once the frame is
// full, the rest of the data is not looked at.
class LzwDecoder {
 public:
  enum class Status { NeedMore, Done, End, Broken };

  explicit LzwDecoder(int min_code_size)
      : clear_(1 << min_code_size), end_(clear_ + 1), min_code_size_(min_code_size) {
    reset();
  }

  // Decodes data[0, n) and hands the pixels to put(pixels, count) until `wanted` pixels are out
  // (Done), the end code comes (End), a code is invalid (Broken) or the data runs out (NeedMore).
  template <typename Put>
  Status decode(const std::uint8_t* data, std::size_t n, std::int64_t wanted, Put&& put) {
    std::int64_t out = 0;
    for (std::size_t i = 0;;) {
      while (bit_count_ < code_size_) {
        if (i == n) return NeedMore;
        bits_ |= static_cast<std::uint32_t>(data[i++]) << bit_count_;
        bit_count_ += 8;
      }
      const int code = static_cast<int>(bits_ & ((1u << code_size_) - 1));
      bits_ >>= code_size_;
      bit_count_ -= code_size_;
      if (code == clear_) {
        reset();
        continue;
      }
      if (code == end_) return End;
      const std::uint8_t* run = nullptr;
      int length = 0;
      if (previous_ < 0) {  // the first code after a clear
        if (code > clear_) return Broken;
        first_ = static_cast<std::uint8_t>(code);
        run = &first_;
        length = 1;
      } else {
        if (code > next_) return Broken;
        // The string of `code`, written backwards from the end of stack_.
        int top = kTable;
        int c = code;
        if (code == next_) {  // the entry being defined: previous string + its first byte
          stack_[--top] = first_;
          c = previous_;
        }
        while (c >= clear_) {
          stack_[--top] = suffix_[c];
          c = prefix_[c];
        }
        stack_[--top] = static_cast<std::uint8_t>(c);
        first_ = static_cast<std::uint8_t>(c);
        if (next_ < kTable) {
          prefix_[next_] = static_cast<std::uint16_t>(previous_);
          suffix_[next_] = first_;
          if (next_ == (1 << code_size_) - 1 && code_size_ < kMaxBits) ++code_size_;
          ++next_;
        }
        run = stack_ + top;
        length = kTable - top;
      }
      previous_ = code;
      put(run, length);
      out += length;
      if (out >= wanted) return Done;
    }
  }

 private:
  static constexpr int kTable = 4096, kMaxBits = 12;
  static constexpr Status NeedMore = Status::NeedMore, Done = Status::Done, End = Status::End,
                          Broken = Status::Broken;

  void reset() {
    next_ = clear_ + 2;
    code_size_ = min_code_size_ + 1;
    previous_ = -1;
  }

  const int clear_, end_, min_code_size_;
  int next_ = 0, code_size_ = 0, previous_ = -1;
  std::uint8_t first_ = 0;  // first byte of the last string
  std::uint32_t bits_ = 0;
  int bit_count_ = 0;
  std::uint16_t prefix_[kTable] = {};
  std::uint8_t suffix_[kTable] = {};
  std::uint8_t stack_[kTable + 1] = {};
};

}  // namespace

DecodedImage decode_gif(const std::uint8_t* data, std::size_t size, const std::string& name,
                        const DecodeOptions& options) {
  Reader reader{data, size, 0};
  int error = 0;
  std::unique_ptr<GifFileType, GifCloser> gif(DGifOpen(&reader, read_bytes, &error));
  MMEMBED_CHECK(gif != nullptr, FormatError, name, ": corrupt or truncated GIF header (",
                gif_error(error), ")");
  GifFileType* g = gif.get();

  // Records up to the first image descriptor; only a graphic control extension matters.
  int transparent = -1;
  for (;;) {
    GifRecordType record = UNDEFINED_RECORD_TYPE;
    if (DGifGetRecordType(g, &record) != GIF_OK) {
      // giflib has read the byte; Pillow skips such bytes and reads on.
      if (g->Error == D_GIF_ERR_WRONG_RECORD) continue;
      throw FormatError(str_cat(name, ": corrupt or truncated GIF (", gif_error(g->Error), ")"));
    }
    if (record == IMAGE_DESC_RECORD_TYPE) break;
    MMEMBED_CHECK(record != TERMINATE_RECORD_TYPE, FormatError, name,
                  ": GIF without an image (the file ends before its first frame)");
    if (record == EXTENSION_RECORD_TYPE) {
      int code = 0;
      GifByteType* block = nullptr;
      MMEMBED_CHECK(DGifGetExtension(g, &code, &block) == GIF_OK, FormatError, name,
                    ": corrupt GIF extension (", gif_error(g->Error), ")");
      if (code == GRAPHICS_EXT_FUNC_CODE && block != nullptr && block[0] >= 4) {
        // block[0] is the length; then flags, delay (2 bytes), transparent index. As in Pillow,
        // a later extension without the transparency flag keeps an earlier index.
        if ((block[1] & 1) != 0) transparent = block[4];
      }
      while (block != nullptr) {
        MMEMBED_CHECK(DGifGetExtensionNext(g, &block) == GIF_OK, FormatError, name,
                      ": corrupt GIF extension (", gif_error(g->Error), ")");
      }
    }
  }
  MMEMBED_CHECK(DGifGetImageDesc(g) == GIF_OK, FormatError, name,
                ": corrupt GIF image descriptor (", gif_error(g->Error), ")");

  const GifImageDesc& frame = g->Image;
  const std::int64_t x0 = frame.Left, y0 = frame.Top, fw = frame.Width, fh = frame.Height;
  const std::int64_t width = std::max<std::int64_t>(g->SWidth, x0 + fw);
  const std::int64_t height = std::max<std::int64_t>(g->SHeight, y0 + fh);
  check_dimensions(width, height, name, options);

  // `map`: the table convert("RGB") applies (null: grey levels); `opened_as_p`: Pillow's mode.
  const ColorMapObject* global =
      g->SColorMap != nullptr && !is_identity_grey(g->SColorMap) ? g->SColorMap : nullptr;
  const ColorMapObject* map = global;
  bool opened_as_p = global != nullptr;
  if (frame.ColorMap != nullptr) {
    opened_as_p = !is_identity_grey(frame.ColorMap);
    if (opened_as_p) map = frame.ColorMap;
  }

  MMEMBED_CHECK(fw > 0 && fh > 0, FormatError, name, ": GIF whose first frame is empty (", fw,
                "x", fh, ")");
  std::vector<std::uint8_t> indices(static_cast<std::size_t>(width * height),
                                    static_cast<std::uint8_t>(transparent >= 0 ? transparent : 0));
  // Row r of the file goes to canvas row y0 + dest[r].
  std::vector<std::int64_t> dest(static_cast<std::size_t>(fh));
  if (frame.Interlace) {
    std::int64_t r = 0;
    for (auto [start, step] : {std::pair{0, 8}, {4, 8}, {2, 4}, {1, 2}}) {
      for (std::int64_t y = start; y < fh; y += step) dest[static_cast<std::size_t>(r++)] = y;
    }
  } else {
    for (std::int64_t y = 0; y < fh; ++y) dest[static_cast<std::size_t>(y)] = y;
  }
  const std::int64_t total = fw * fh;
  std::int64_t written = 0;
  auto put = [&](const std::uint8_t* run, std::int64_t n) {  // pixels in file order
    for (std::int64_t i = 0; i < n && written < total; ++i, ++written) {
      const std::int64_t r = written / fw, x = written % fw;
      indices[static_cast<std::size_t>((y0 + dest[static_cast<std::size_t>(r)]) * width + x0 + x)] =
          run[i];
    }
  };

  // The LZW data block by block, decoded as they come; as in Pillow, the frame is done when its
  // last pixel is written, whatever follows.
  int code_size = 0;
  GifByteType* block = nullptr;
  MMEMBED_CHECK(DGifGetCode(g, &code_size, &block) == GIF_OK, FormatError, name,
                ": corrupt or truncated GIF image data (", gif_error(g->Error), ")");
  MMEMBED_CHECK(code_size >= 0 && code_size <= 11, FormatError, name,
                ": GIF with an LZW minimum code size of ", code_size, " (0 to 11 are read)");
  LzwDecoder lzw(code_size);
  while (written < total) {
    MMEMBED_CHECK(block != nullptr, FormatError, name, ": GIF image data ends after ", written,
                  " of the frame's ", total, " pixels");
    const LzwDecoder::Status status = lzw.decode(block + 1, block[0], total - written, put);
    MMEMBED_CHECK(status != LzwDecoder::Status::Broken, FormatError, name,
                  ": corrupt GIF image data (invalid LZW code after ", written, " pixels)");
    MMEMBED_CHECK(status != LzwDecoder::Status::End || written == total, FormatError, name,
                  ": GIF image data ends after ", written, " of the frame's ", total, " pixels");
    if (written == total) break;
    MMEMBED_CHECK(DGifGetCodeNext(g, &block) == GIF_OK, FormatError, name,
                  ": truncated GIF image data (", gif_error(g->Error), ")");
  }

  DecodedImage result;
  result.format = ImageFormat::Gif;
  // "P" or "L"; assigning the literals trips GCC 12's -Wrestrict false positive at -O3.
  result.source_mode.assign(1, opened_as_p ? 'P' : 'L');
  result.rgb = Tensor::empty(DType::U8, {height, width, 3});
  std::uint8_t lut[256][3];
  for (int i = 0; i < 256; ++i) {
    if (map == nullptr) {  // grey levels
      lut[i][0] = lut[i][1] = lut[i][2] = static_cast<std::uint8_t>(i);
    } else if (i < map->ColorCount) {
      lut[i][0] = map->Colors[i].Red;
      lut[i][1] = map->Colors[i].Green;
      lut[i][2] = map->Colors[i].Blue;
    } else {
      lut[i][0] = lut[i][1] = lut[i][2] = 0;
    }
  }
  std::uint8_t* out = result.rgb.data<std::uint8_t>();
  for (std::size_t i = 0; i < indices.size(); ++i) std::memcpy(out + 3 * i, lut[indices[i]], 3);
  return result;
}

}  // namespace mmembed::vision::detail
