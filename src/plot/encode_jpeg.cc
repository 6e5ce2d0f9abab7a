// Thumbnails for SVG and HTML as JPEG: a photo thumbnail is several times smaller than as PNG,
// which keeps a page with hundreds of pictures light.
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <jpeglib.h>

#include "core/check.h"
#include "plot/canvas.h"

namespace mmembed::plot::detail {
namespace {

// libjpeg's error_exit must not return: longjmp back to encode_jpeg, which throws.
struct ErrorManager {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void on_error_exit(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<ErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

// Everything with a destructor lives outside the function that calls setjmp.
bool compress(const Image& im, int quality, jpeg_compress_struct* cinfo, unsigned char** out,
              unsigned long* size) {
  auto* err = reinterpret_cast<ErrorManager*>(cinfo->err);
  if (setjmp(err->jump)) return false;
  jpeg_create_compress(cinfo);
  jpeg_mem_dest(cinfo, out, size);
  cinfo->image_width = static_cast<JDIMENSION>(im.width);
  cinfo->image_height = static_cast<JDIMENSION>(im.height);
  cinfo->input_components = 3;
  cinfo->in_color_space = JCS_RGB;
  jpeg_set_defaults(cinfo);
  jpeg_set_quality(cinfo, quality, TRUE);
  jpeg_start_compress(cinfo, TRUE);
  while (cinfo->next_scanline < cinfo->image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(im.rgb.data() +
                                        static_cast<std::size_t>(cinfo->next_scanline) * im.width * 3);
    jpeg_write_scanlines(cinfo, &row, 1);
  }
  jpeg_finish_compress(cinfo);
  return true;
}

}  // namespace

std::string encode_jpeg(const Image& im, int quality) {
  MMEMBED_ASSERT(!im.empty() && im.rgb.size() == static_cast<std::size_t>(im.width) * im.height * 3);
  jpeg_compress_struct cinfo{};
  ErrorManager err{};
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = on_error_exit;
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  const bool ok = compress(im, quality, &cinfo, &buffer, &size);
  jpeg_destroy_compress(&cinfo);
  std::string out;
  if (ok) out.assign(reinterpret_cast<const char*>(buffer), size);
  std::free(buffer);
  MMEMBED_CHECK(ok, InvalidArgument, "scatter plot: JPEG encoding of a ", im.width, "x", im.height,
                " thumbnail failed: ", err.message);
  return out;
}

}  // namespace mmembed::plot::detail
