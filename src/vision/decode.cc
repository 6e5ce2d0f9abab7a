#include "vision/decode.h"

#include <cerrno>
#include <cstring>
#include <iterator>
#include <vector>

#include "core/file.h"
#include "vision/decode_internal.h"

namespace mmembed::vision {

const char* format_name(ImageFormat format) {
  switch (format) {
    case ImageFormat::Jpeg: return "JPEG";
    case ImageFormat::Png: return "PNG";
    case ImageFormat::WebP: return "WebP";
    case ImageFormat::Gif: return "GIF";
    case ImageFormat::Bmp: return "BMP";
    case ImageFormat::Tiff: return "TIFF";
    case ImageFormat::Unknown: break;
  }
  return "unknown";
}

ImageFormat detect_format(const std::uint8_t* data, std::size_t size) {
  auto starts_with = [&](const char* magic, std::size_t n, std::size_t at = 0) {
    return size >= at + n && std::memcmp(data + at, magic, n) == 0;
  };
  if (starts_with("\xFF\xD8\xFF", 3)) return ImageFormat::Jpeg;
  if (starts_with("\x89PNG\r\n\x1A\n", 8)) return ImageFormat::Png;
  if (starts_with("RIFF", 4) && starts_with("WEBP", 4, 8)) return ImageFormat::WebP;
  if (starts_with("GIF87a", 6) || starts_with("GIF89a", 6)) return ImageFormat::Gif;
  if (starts_with("BM", 2)) return ImageFormat::Bmp;
  if (starts_with("II*\0", 4) || starts_with("MM\0*", 4)) return ImageFormat::Tiff;
  return ImageFormat::Unknown;
}

namespace detail {

void check_dimensions(std::int64_t width, std::int64_t height, const std::string& name,
                      const DecodeOptions& options) {
  MMEMBED_CHECK(width > 0 && height > 0, FormatError, name, ": image has no pixels (", width, "x",
                height, " in the header)");
  MMEMBED_CHECK(options.max_pixels <= 0 || width * height <= options.max_pixels, InvalidArgument,
                name, ": image is ", width, "x", height, " = ", width * height,
                " pixels, over the limit of ", options.max_pixels,
                " (possible decompression bomb; raise DecodeOptions::max_pixels to accept it)");
}

}  // namespace detail

DecodedImage decode_image(const std::uint8_t* data, std::size_t size, const std::string& name,
                          const DecodeOptions& options) {
  MMEMBED_CHECK(size > 0, FormatError, name, ": empty file (0 bytes), not an image");
  ImageFormat format = detect_format(data, size);
  switch (format) {
    case ImageFormat::Jpeg: return detail::decode_jpeg(data, size, name, options);
    case ImageFormat::Png: return detail::decode_png(data, size, name, options);
    case ImageFormat::WebP: return detail::decode_webp(data, size, name, options);
    case ImageFormat::Gif: return detail::decode_gif(data, size, name, options);
    case ImageFormat::Bmp:
    case ImageFormat::Tiff:
      throw Unsupported(str_cat(name, ": ", format_name(format),
                                " images are not supported (supported: JPEG, PNG, WebP, GIF)"));
    case ImageFormat::Unknown: break;
  }
  throw FormatError(str_cat(name, ": not a JPEG, PNG, WebP or GIF image (unrecognized first ",
                            "bytes, ", size, " bytes in all)"));
}

DecodedImage read_image(const std::string& path, const DecodeOptions& options) {
  // Bounded before anything is read: a 6 GB sparse file that starts like a PNG is refused from
  // its size, /dev/zero and FIFOs from their type.
  const std::string bytes = read_input_file(path, kMaxImageFileBytes);
  return decode_image(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(),
                      escape_for_message(path), options);
}

}  // namespace mmembed::vision
