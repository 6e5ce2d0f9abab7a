// PNG through libpng. Pillow decodes PNG itself (zlib + its unpackers), so we ask libpng only to
// de-interlace and to unpack sub-byte samples, and do every conversion to RGB here the way
// Pillow's unpackers and convert("RGB") do (modes table in PIL/PngImagePlugin.py):
//   gray 1/2/4/8 -> "1"/"L" (sample * 255, 85, 17, 1); gray 16 -> "I;16" (clip to 255);
//   gray+alpha 8 -> "LA"; 16-bit gray+alpha, RGB and RGBA -> high byte of each sample;
//   palette -> "P", looked up in a 256-entry table that is black past the PLTE entries.
// Gamma, colour profiles and tRNS are ignored (Pillow does not apply them either).
//
// libpng reports errors through our error function, which longjmps back into the stage
// functions below; their frames hold no C++ objects with destructors.
#include <png.h>

#include <algorithm>
#include <array>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <vector>

#include "vision/decode_internal.h"

namespace mmembed::vision::detail {

namespace {

struct PngSource {
  const std::uint8_t* data;
  std::size_t size;
  std::size_t pos;
  char message[256];
};

void on_png_error(png_structp png, png_const_charp msg) {
  PngSource* src = static_cast<PngSource*>(png_get_error_ptr(png));
  std::snprintf(src->message, sizeof(src->message), "%s", msg);
  png_longjmp(png, 1);
}

void on_png_warning(png_structp, png_const_charp) {}

void on_png_read(png_structp png, png_bytep out, std::size_t n) {
  PngSource* src = static_cast<PngSource*>(png_get_io_ptr(png));
  if (n > src->size - src->pos) png_error(png, "unexpected end of data (truncated file)");
  std::memcpy(out, src->data + src->pos, n);
  src->pos += n;
}

bool read_info(png_structp png, png_infop info) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_read_info(png, info);
  return true;
}

bool prepare_rows(png_structp png, png_infop info, int bit_depth) {
  if (setjmp(png_jmpbuf(png))) return false;
  if (bit_depth < 8) png_set_packing(png);  // one byte per sample, value not scaled
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  return true;
}

bool read_rows(png_structp png, png_bytepp rows) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_read_image(png, rows);
  return true;
}

struct PngReader {
  png_structp png = nullptr;
  png_infop info = nullptr;
  ~PngReader() { png_destroy_read_struct(&png, info ? &info : nullptr, nullptr); }
};

const char* pillow_mode(int color_type, int bit_depth) {
  switch (color_type) {
    case PNG_COLOR_TYPE_GRAY: return bit_depth == 1 ? "1" : bit_depth == 16 ? "I;16" : "L";
    case PNG_COLOR_TYPE_RGB: return "RGB";
    case PNG_COLOR_TYPE_PALETTE: return "P";
    case PNG_COLOR_TYPE_GRAY_ALPHA: return bit_depth == 16 ? "RGBA" : "LA";
    case PNG_COLOR_TYPE_RGB_ALPHA: return "RGBA";
  }
  return "?";
}

}  // namespace

DecodedImage decode_png(const std::uint8_t* data, std::size_t size, const std::string& name,
                        const DecodeOptions& options) {
  PngSource src{data, size, 0, {}};
  PngReader r;
  r.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, on_png_error, on_png_warning);
  MMEMBED_CHECK(r.png != nullptr, FormatError, name, ": cannot create a PNG reader");
  r.info = png_create_info_struct(r.png);
  MMEMBED_CHECK(r.info != nullptr, FormatError, name, ": cannot create a PNG reader");
  png_set_read_fn(r.png, &src, on_png_read);
  // The dimensions are checked by us (DecodeOptions::max_pixels), not by libpng's own limits.
  png_set_user_limits(r.png, 0x7fffffff, 0x7fffffff);

  MMEMBED_CHECK(read_info(r.png, r.info), FormatError, name, ": corrupt PNG: ", src.message);
  const std::int64_t width = png_get_image_width(r.png, r.info);
  const std::int64_t height = png_get_image_height(r.png, r.info);
  const int bit_depth = png_get_bit_depth(r.png, r.info);
  const int color_type = png_get_color_type(r.png, r.info);
  check_dimensions(width, height, name, options);

  std::array<std::uint8_t, 256 * 3> palette{};  // black past the PLTE entries, as Pillow
  if (color_type == PNG_COLOR_TYPE_PALETTE) {
    png_colorp entries = nullptr;
    int count = 0;
    MMEMBED_CHECK(png_get_PLTE(r.png, r.info, &entries, &count) != 0, FormatError, name,
                  ": corrupt PNG: palette image without a PLTE chunk");
    for (int i = 0; i < std::min(count, 256); ++i) {
      palette[3 * i] = entries[i].red;
      palette[3 * i + 1] = entries[i].green;
      palette[3 * i + 2] = entries[i].blue;
    }
  }

  MMEMBED_CHECK(prepare_rows(r.png, r.info, bit_depth), FormatError, name, ": corrupt PNG: ",
                src.message);
  const std::size_t row_bytes = png_get_rowbytes(r.png, r.info);
  const int channels = png_get_channels(r.png, r.info);
  const int bytes_per_sample = bit_depth == 16 ? 2 : 1;
  MMEMBED_ASSERT(row_bytes == static_cast<std::size_t>(width * channels * bytes_per_sample));

  std::vector<std::uint8_t> raw(row_bytes * static_cast<std::size_t>(height));
  std::vector<png_bytep> rows(static_cast<std::size_t>(height));
  for (std::int64_t y = 0; y < height; ++y) rows[y] = raw.data() + y * row_bytes;
  MMEMBED_CHECK(read_rows(r.png, rows.data()), FormatError, name, ": corrupt PNG data: ",
                src.message);

  DecodedImage result;
  result.format = ImageFormat::Png;
  result.source_mode = pillow_mode(color_type, bit_depth);
  result.rgb = Tensor::empty(DType::U8, {height, width, 3});
  std::uint8_t* out = result.rgb.data<std::uint8_t>();
  const std::int64_t pixels = width * height;
  const std::uint8_t* in = raw.data();

  if (color_type == PNG_COLOR_TYPE_PALETTE) {
    for (std::int64_t i = 0; i < pixels; ++i) {
      std::memcpy(out + 3 * i, &palette[3 * in[i]], 3);
    }
  } else if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth == 16) {
    for (std::int64_t i = 0; i < pixels; ++i) {
      int v = (in[2 * i] << 8) | in[2 * i + 1];
      out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = static_cast<std::uint8_t>(std::min(v, 255));
    }
  } else if (color_type == PNG_COLOR_TYPE_GRAY || color_type == PNG_COLOR_TYPE_GRAY_ALPHA) {
    const int scale = bit_depth == 1 ? 255 : bit_depth == 2 ? 85 : bit_depth == 4 ? 17 : 1;
    const int stride = channels * bytes_per_sample;  // the high byte comes first
    for (std::int64_t i = 0; i < pixels; ++i) {
      auto v = static_cast<std::uint8_t>(in[stride * i] * scale);
      out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = v;
    }
  } else {  // RGB, RGBA, 8 or 16 bits
    const int stride = channels * bytes_per_sample;
    for (std::int64_t i = 0; i < pixels; ++i) {
      for (int c = 0; c < 3; ++c) out[3 * i + c] = in[stride * i + c * bytes_per_sample];
    }
  }
  return result;
}

}  // namespace mmembed::vision::detail
