// Image decoding to 8-bit RGB, pixel for pixel what `PIL.Image.open(f).convert("RGB")` gives.
//
//   vision::DecodedImage im = vision::read_image("cat.jpg");       // throws on any problem
//   const std::uint8_t* px = im.rgb.data<std::uint8_t>();           // U8 [H, W, 3], row-major
//
// Formats, recognized by their magic bytes (never by the file name): JPEG (libjpeg-turbo),
// PNG (libpng), WebP (libwebp), GIF (giflib; the first frame, decode_gif.cc). BMP and TIFF are
// recognized and rejected with Unsupported.
//
// Colour conversion follows Pillow 11.3's `convert("RGB")`:
//   L -> replicate; LA / RGBA -> alpha dropped, no compositing; P -> palette lookup (entries past
//   the palette's end are black), transparency ignored (GIF: a frame smaller than the screen sits
//   on index 0 or the transparent index, decode_gif.cc); 1-bit -> 0 / 255; 2- and 4-bit gray
//   scaled by 85 / 17; 16-bit gray ("I;16") -> value clipped to 255 (no scaling: a 16-bit photo
//   comes out almost white, as in Pillow); 16-bit RGB / RGBA / gray+alpha -> the high byte;
//   CMYK JPEG -> Adobe-inverted CMYK converted with Pillow's integer formula.
// EXIF orientation is NOT applied (neither PIL.Image.open nor the HF processors apply it).
//
// Decompression bombs: the pixel count is read from the header and checked against
// DecodeOptions::max_pixels before any pixel memory is allocated.
//
// Errors: FormatError (corrupt, truncated, empty or unrecognized data), Unsupported (a format or
// variant we do not decode), InvalidArgument (over the pixel limit), IoError (unreadable file).
// Every message starts with the file name (or the caller's `name` for in-memory data).
// Thread-safety: all functions are reentrant.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/tensor.h"

namespace mmembed::vision {

enum class ImageFormat { Unknown, Jpeg, Png, WebP, Gif, Bmp, Tiff };

const char* format_name(ImageFormat format);

// Format from the first bytes of the data (Unknown when none matches).
ImageFormat detect_format(const std::uint8_t* data, std::size_t size);

// Pillow's Image.MAX_IMAGE_PIXELS. Pillow warns above it and fails above twice it; we fail above it.
inline constexpr std::int64_t kDefaultMaxPixels = 89'478'485;

struct DecodeOptions {
  // Largest width * height accepted; 0 disables the check.
  std::int64_t max_pixels = kDefaultMaxPixels;
};

struct DecodedImage {
  Tensor rgb;                       // U8 [height, width, 3]
  ImageFormat format = ImageFormat::Unknown;
  std::string source_mode;          // Pillow's mode on open: "RGB", "L", "CMYK", "P", "I;16", ...
};

// Decodes `size` bytes at `data`; `name` identifies the data in error messages.
DecodedImage decode_image(const std::uint8_t* data, std::size_t size, const std::string& name,
                          const DecodeOptions& options = {});

// Reads and decodes the file at `path`.
DecodedImage read_image(const std::string& path, const DecodeOptions& options = {});

}  // namespace mmembed::vision
