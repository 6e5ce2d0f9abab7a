// JPEG through libjpeg-turbo with the settings Pillow uses (src/libImaging/JpegDecode.c): the
// library's defaults (JDCT_ISLOW, fancy upsampling, block smoothing), out_color_space RGB /
// GRAYSCALE / CMYK by component count, no scaling, no draft mode.
//
// libjpeg reports errors through error_exit, which must not return: ours longjmps back into the
// small stage functions below. Those frames hold no C++ objects with destructors, so the jump
// skips nothing; the caller turns the failure into an exception.
#include <csetjmp>
#include <cstdio>  // jpeglib.h needs FILE
#include <vector>

#include <jerror.h>
#include <jpeglib.h>

#include "vision/decode_internal.h"

namespace mmembed::vision::detail {

namespace {

struct JpegError {
  jpeg_error_mgr pub;  // first member: libjpeg sees a jpeg_error_mgr*
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
  bool hit_eof;  // libjpeg ran out of data and inserted a fake EOI
};

void on_error_exit(j_common_ptr cinfo) {
  JpegError* err = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

// Warnings (corrupt-data notices) are ignored as Pillow does, except running out of data.
void on_emit_message(j_common_ptr cinfo, int level) {
  if (level < 0) {
    JpegError* err = reinterpret_cast<JpegError*>(cinfo->err);
    if (cinfo->err->msg_code == JWRN_JPEG_EOF) err->hit_eof = true;
    cinfo->err->num_warnings++;
  }
}

void on_output_message(j_common_ptr) {}

bool read_header(jpeg_decompress_struct* cinfo, JpegError* err, const std::uint8_t* data,
                 std::size_t size) {
  if (setjmp(err->jump)) return false;
  jpeg_mem_src(cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(cinfo, TRUE);
  return true;
}

bool decode_rows(jpeg_decompress_struct* cinfo, JpegError* err, std::uint8_t* out,
                 std::size_t row_bytes, bool* truncated) {
  if (setjmp(err->jump)) return false;
  jpeg_start_decompress(cinfo);
  while (cinfo->output_scanline < cinfo->output_height) {
    JSAMPROW row = out + static_cast<std::size_t>(cinfo->output_scanline) * row_bytes;
    jpeg_read_scanlines(cinfo, &row, 1);
  }
  // Data ending after the last scanline (e.g. a missing EOI marker) is accepted, as Pillow does.
  *truncated = err->hit_eof;
  jpeg_finish_decompress(cinfo);
  return true;
}

struct Decompressor {
  jpeg_decompress_struct cinfo{};
  JpegError err{};
  Decompressor() {
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = on_error_exit;
    err.pub.emit_message = on_emit_message;
    err.pub.output_message = on_output_message;
    jpeg_create_decompress(&cinfo);  // cannot fail with a valid error manager
  }
  ~Decompressor() { jpeg_destroy_decompress(&cinfo); }
  Decompressor(const Decompressor&) = delete;
  Decompressor& operator=(const Decompressor&) = delete;
};

}  // namespace

DecodedImage decode_jpeg(const std::uint8_t* data, std::size_t size, const std::string& name,
                         const DecodeOptions& options) {
  Decompressor d;
  jpeg_decompress_struct* cinfo = &d.cinfo;
  MMEMBED_CHECK(read_header(cinfo, &d.err, data, size), FormatError, name,
                ": corrupt JPEG header: ", d.err.message);
  MMEMBED_CHECK(cinfo->data_precision == 8, Unsupported, name, ": ", cinfo->data_precision,
                "-bit JPEG samples are not supported (8-bit only, as Pillow)");
  std::string mode;
  switch (cinfo->num_components) {
    case 1: cinfo->out_color_space = JCS_GRAYSCALE; mode = "L"; break;
    case 3: cinfo->out_color_space = JCS_RGB; mode = "RGB"; break;
    case 4: cinfo->out_color_space = JCS_CMYK; mode = "CMYK"; break;
    default:
      throw Unsupported(str_cat(name, ": JPEG with ", cinfo->num_components,
                                " components is not supported (1, 3 or 4, as Pillow)"));
  }
  const std::int64_t width = cinfo->image_width, height = cinfo->image_height;
  check_dimensions(width, height, name, options);
  const int comps = cinfo->num_components;

  DecodedImage result;
  result.format = ImageFormat::Jpeg;
  result.source_mode = mode;
  result.rgb = Tensor::empty(DType::U8, {height, width, 3});
  std::uint8_t* rgb = result.rgb.data<std::uint8_t>();
  std::vector<std::uint8_t> raw;
  std::uint8_t* out = rgb;
  if (comps != 3) {
    raw.resize(static_cast<std::size_t>(width * height * comps));
    out = raw.data();
  }
  bool truncated = false;
  MMEMBED_CHECK(decode_rows(cinfo, &d.err, out, static_cast<std::size_t>(width * comps),
                            &truncated),
                FormatError, name, ": corrupt JPEG data: ", d.err.message);
  MMEMBED_CHECK(!truncated, FormatError, name,
                ": truncated JPEG (the data ends before the last scanline)");

  const std::int64_t pixels = width * height;
  if (comps == 1) {
    for (std::int64_t i = 0; i < pixels; ++i) {
      rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = raw[i];
    }
  } else if (comps == 4) {
    // Pillow assumes Adobe's inverted CMYK ("CMYK;I"): its in-memory value is 255 - stored.
    for (std::int64_t i = 0; i < pixels; ++i) {
      const std::uint8_t* s = &raw[4 * i];
      std::uint8_t cmyk[4] = {static_cast<std::uint8_t>(255 - s[0]),
                              static_cast<std::uint8_t>(255 - s[1]),
                              static_cast<std::uint8_t>(255 - s[2]),
                              static_cast<std::uint8_t>(255 - s[3])};
      cmyk_to_rgb(cmyk, &rgb[3 * i]);
    }
  }
  return result;
}

}  // namespace mmembed::vision::detail
