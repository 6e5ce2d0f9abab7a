// WebP through libwebp's animation decoder with default options (RGBA output, frame 0), the path
// Pillow 11 uses for every WebP file (src/_webp.c: WebPAnimDecoderNew(&data, NULL)). A still
// image is the first and only frame; the alpha channel is dropped by convert("RGB").
#include <webp/decode.h>
#include <webp/demux.h>

#include <memory>

#include "vision/decode_internal.h"

namespace mmembed::vision::detail {

DecodedImage decode_webp(const std::uint8_t* data, std::size_t size, const std::string& name,
                         const DecodeOptions& options) {
  WebPBitstreamFeatures features;
  VP8StatusCode status = WebPGetFeatures(data, size, &features);
  MMEMBED_CHECK(status != VP8_STATUS_NOT_ENOUGH_DATA, FormatError, name,
                ": truncated WebP (the data ends inside the header)");
  MMEMBED_CHECK(status == VP8_STATUS_OK, FormatError, name, ": corrupt WebP header (libwebp status ",
                static_cast<int>(status), ")");
  check_dimensions(features.width, features.height, name, options);

  WebPData webp_data{data, size};
  std::unique_ptr<WebPAnimDecoder, void (*)(WebPAnimDecoder*)> decoder(
      WebPAnimDecoderNew(&webp_data, nullptr), WebPAnimDecoderDelete);
  MMEMBED_CHECK(decoder != nullptr, FormatError, name,
                ": corrupt or truncated WebP (libwebp cannot parse the container)");
  WebPAnimInfo info;
  MMEMBED_CHECK(WebPAnimDecoderGetInfo(decoder.get(), &info) != 0, FormatError, name,
                ": corrupt WebP container");
  const std::int64_t width = info.canvas_width, height = info.canvas_height;
  check_dimensions(width, height, name, options);
  std::uint8_t* rgba = nullptr;
  int timestamp = 0;
  MMEMBED_CHECK(WebPAnimDecoderGetNext(decoder.get(), &rgba, &timestamp) != 0, FormatError, name,
                ": corrupt or truncated WebP image data");

  DecodedImage result;
  result.format = ImageFormat::WebP;
  result.source_mode = features.has_alpha ? "RGBA" : "RGB";
  result.rgb = Tensor::empty(DType::U8, {height, width, 3});
  std::uint8_t* out = result.rgb.data<std::uint8_t>();
  for (std::int64_t i = 0; i < width * height; ++i) {
    out[3 * i] = rgba[4 * i];
    out[3 * i + 1] = rgba[4 * i + 1];
    out[3 * i + 2] = rgba[4 * i + 2];
  }
  return result;
}

}  // namespace mmembed::vision::detail
