// Decoding: Pillow's mode conversions on synthetic PNGs (expected values from Pillow 11.3's
// Image.open(...).convert("RGB")), format detection, the pixel limit, and the error paths:
// empty, truncated, corrupt and unrecognized files give typed errors naming the file.
#include "vision/decode.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "mmembed/error.h"

namespace mmembed::vision {
namespace {

using Bytes = std::vector<std::uint8_t>;

std::string data_path(const std::string& relative) {
  return std::string(MMEMBED_TEST_DATA_DIR) + "/" + relative;
}

Bytes read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

std::string write_temp(const std::string& name, const Bytes& bytes) {
  std::string path = ::testing::TempDir() + "mmembed_vision_" + name;
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  return path;
}

void put_u32(Bytes* out, std::uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out->push_back(static_cast<std::uint8_t>(v >> s));
}

void put_chunk(Bytes* out, const char* type, const Bytes& data) {
  put_u32(out, static_cast<std::uint32_t>(data.size()));
  Bytes body(type, type + 4);
  body.insert(body.end(), data.begin(), data.end());
  out->insert(out->end(), body.begin(), body.end());
  put_u32(out, static_cast<std::uint32_t>(crc32(0, body.data(), static_cast<uInt>(body.size()))));
}

// A minimal non-interlaced PNG; `rows` are the raw scanlines without the filter byte.
Bytes make_png(std::uint32_t w, std::uint32_t h, int depth, int color_type,
               const std::vector<Bytes>& rows, const Bytes& palette = {}) {
  Bytes out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  Bytes ihdr;
  put_u32(&ihdr, w);
  put_u32(&ihdr, h);
  ihdr.insert(ihdr.end(), {static_cast<std::uint8_t>(depth), static_cast<std::uint8_t>(color_type), 0, 0, 0});
  put_chunk(&out, "IHDR", ihdr);
  if (!palette.empty()) put_chunk(&out, "PLTE", palette);
  Bytes raw;
  for (const Bytes& row : rows) {
    raw.push_back(0);
    raw.insert(raw.end(), row.begin(), row.end());
  }
  uLongf size = compressBound(static_cast<uLong>(raw.size()));
  Bytes z(size);
  compress(z.data(), &size, raw.data(), static_cast<uLong>(raw.size()));
  z.resize(size);
  put_chunk(&out, "IDAT", z);
  put_chunk(&out, "IEND", {});
  return out;
}

std::vector<int> rgb_of(const Bytes& file, std::string* mode = nullptr) {
  DecodedImage im = decode_image(file.data(), file.size(), "synthetic.png");
  if (mode) *mode = im.source_mode;
  const std::uint8_t* p = im.rgb.data<std::uint8_t>();
  return std::vector<int>(p, p + im.rgb.numel());
}

TEST(DecodePng, PillowModeConversions) {
  std::string mode;
  EXPECT_EQ(rgb_of(make_png(8, 1, 1, 0, {{0b10110010}}), &mode),
            (std::vector<int>{255, 255, 255, 0, 0, 0, 255, 255, 255, 255, 255, 255,
                              0, 0, 0, 0, 0, 0, 255, 255, 255, 0, 0, 0}));
  EXPECT_EQ(mode, "1");
  EXPECT_EQ(rgb_of(make_png(4, 1, 2, 0, {{0b00011011}}), &mode),
            (std::vector<int>{0, 0, 0, 85, 85, 85, 170, 170, 170, 255, 255, 255}));
  EXPECT_EQ(mode, "L");
  EXPECT_EQ(rgb_of(make_png(2, 1, 4, 0, {{0x3C}})), (std::vector<int>{51, 51, 51, 204, 204, 204}));
  // 16-bit gray opens as I;16 and clips (no scaling): 0, 200, 1000 -> 0, 200, 255.
  EXPECT_EQ(rgb_of(make_png(3, 1, 16, 0, {{0, 0, 0, 200, 0x03, 0xE8}}), &mode),
            (std::vector<int>{0, 0, 0, 200, 200, 200, 255, 255, 255}));
  EXPECT_EQ(mode, "I;16");
  // 16-bit RGB / gray+alpha / RGBA keep the high byte.
  EXPECT_EQ(rgb_of(make_png(2, 1, 16, 2, {{0x12, 0x34, 0xAB, 0xFF, 0x00, 0xFF, 0xFF, 0x00, 0x80,
                                           0x80, 0x7F, 0x7F}}), &mode),
            (std::vector<int>{18, 171, 0, 255, 128, 127}));
  EXPECT_EQ(mode, "RGB");
  EXPECT_EQ(rgb_of(make_png(2, 1, 8, 4, {{10, 20, 200, 0}}), &mode),
            (std::vector<int>{10, 10, 10, 200, 200, 200}));
  EXPECT_EQ(mode, "LA");
  EXPECT_EQ(rgb_of(make_png(1, 1, 16, 4, {{0x5A, 0x10, 0x01, 0x01}}), &mode),
            (std::vector<int>{90, 90, 90}));
  EXPECT_EQ(mode, "RGBA");
  // Alpha 0 is dropped, not composited.
  EXPECT_EQ(rgb_of(make_png(1, 1, 16, 6, {{1, 2, 3, 4, 5, 6, 0, 0}})), (std::vector<int>{1, 3, 5}));
  // Palette: index 5 is past the 2-entry PLTE -> black, as Pillow.
  EXPECT_EQ(rgb_of(make_png(3, 1, 8, 3, {{0, 1, 5}}, {10, 20, 30, 40, 50, 60}), &mode),
            (std::vector<int>{10, 20, 30, 40, 50, 60, 0, 0, 0}));
  EXPECT_EQ(mode, "P");
  EXPECT_EQ(rgb_of(make_png(4, 1, 2, 3, {{0b00010010}}, {1, 2, 3, 4, 5, 6, 7, 8, 9})),
            (std::vector<int>{1, 2, 3, 4, 5, 6, 1, 2, 3, 7, 8, 9}));
}

TEST(DecodeFormat, DetectedByMagicBytesNotName) {
  Bytes png = read_bytes(data_path("images/tiny_5x4.png"));
  Bytes jpg = read_bytes(data_path("images/gray.jpg"));
  Bytes webp = read_bytes(data_path("images/cat.webp"));
  EXPECT_EQ(detect_format(png.data(), png.size()), ImageFormat::Png);
  EXPECT_EQ(detect_format(jpg.data(), jpg.size()), ImageFormat::Jpeg);
  EXPECT_EQ(detect_format(webp.data(), webp.size()), ImageFormat::WebP);
  const Bytes gif = {'G', 'I', 'F', '8', '9', 'a', 1, 0, 1, 0};
  EXPECT_EQ(detect_format(gif.data(), gif.size()), ImageFormat::Gif);
  EXPECT_EQ(detect_format(png.data(), 3), ImageFormat::Unknown);
  // A PNG saved as .jpg still decodes as PNG.
  DecodedImage im = read_image(write_temp("really_a_png.jpg", png));
  EXPECT_EQ(im.format, ImageFormat::Png);
  EXPECT_EQ(im.rgb.shape(), (Shape{4, 5, 3}));
}

TEST(DecodeFormat, JpegModesAndSizes) {
  DecodedImage gray = read_image(data_path("images/gray.jpg"));
  EXPECT_EQ(gray.source_mode, "L");
  EXPECT_EQ(gray.rgb.shape(), (Shape{256, 256, 3}));
  DecodedImage cmyk = read_image(data_path("images/cmyk.jpg"));
  EXPECT_EQ(cmyk.source_mode, "CMYK");
  EXPECT_EQ(cmyk.rgb.shape(), (Shape{200, 300, 3}));
}

// Checks that `fn` throws E whose message contains every piece of `needles`.
template <typename E, typename Fn>
void expect_error(Fn fn, const std::vector<std::string>& needles) {
  try {
    fn();
    ADD_FAILURE() << "no exception";
  } catch (const E& e) {
    for (const std::string& n : needles) {
      EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << e.what() << " lacks " << n;
    }
  }
}

TEST(DecodeErrors, EmptyFile) {
  std::string path = write_temp("empty.jpg", {});
  expect_error<FormatError>([&] { read_image(path); }, {path, "empty file"});
}

TEST(DecodeErrors, MissingFile) {
  expect_error<IoError>([] { read_image("/nonexistent/dir/x.png"); }, {"/nonexistent/dir/x.png"});
}

TEST(DecodeErrors, UnrecognizedAndUnsupportedFormats) {
  std::string text = write_temp("notes.png", Bytes{'h', 'e', 'l', 'l', 'o'});
  expect_error<FormatError>([&] { read_image(text); }, {text, "not a JPEG, PNG, WebP or GIF"});
  std::string bmp = write_temp("photo.bmp", Bytes{'B', 'M', 70, 0, 0, 0, 0, 0, 0, 0, 54, 0});
  expect_error<Unsupported>([&] { read_image(bmp); }, {bmp, "BMP", "not supported"});
}

// A GIF "screen" of w x h (little-endian), no global table.
Bytes gif_screen(std::uint16_t w, std::uint16_t h) {
  return {'G', 'I', 'F', '8', '9', 'a', static_cast<std::uint8_t>(w & 0xFF),
          static_cast<std::uint8_t>(w >> 8), static_cast<std::uint8_t>(h & 0xFF),
          static_cast<std::uint8_t>(h >> 8), 0, 0, 0};
}

// A GIF of one w x h frame without colour tables: LZW minimum code size 2 and `data` as one
// sub-block.
Bytes gif_frame(std::uint8_t w, std::uint8_t h, const Bytes& data) {
  Bytes gif = gif_screen(w, h);
  for (std::uint8_t b : {0x2C, 0, 0, 0, 0, int(w), 0, int(h), 0, 0, 2}) {
    gif.push_back(static_cast<std::uint8_t>(b));
  }
  gif.push_back(static_cast<std::uint8_t>(data.size()));
  gif.insert(gif.end(), data.begin(), data.end());
  gif.push_back(0);
  gif.push_back(';');
  return gif;
}

// The LZW data is held to Pillow's rules (codes of 3 bits here: clear 4, end 5, first free 6).
TEST(DecodeErrors, GifImageDataBrokenShortOrEmpty) {
  // clear, then 6: the first code after a clear must be a literal.
  std::string broken = write_temp("broken_lzw.gif", gif_frame(2, 2, {4 | 6 << 3}));
  expect_error<FormatError>([&] { read_image(broken); }, {broken, "invalid LZW code"});
  // clear, literal 1, end: one pixel of four.
  std::string shrt = write_temp("short_lzw.gif", gif_frame(2, 2, {0x4C, 0x01}));
  expect_error<FormatError>([&] { read_image(shrt); }, {shrt, "ends after 1 of the frame's 4"});
  // clear, literal 1, literal 2, code 6 (= "1 2" just defined), end: all four pixels; then data
  // that is never looked at, as in Pillow.
  DecodedImage ok = read_image(write_temp("ok_lzw.gif", gif_frame(2, 2, {0x8C, 0x5C, 0xFF})));
  ASSERT_EQ(ok.rgb.shape(), (Shape{2, 2, 3}));
  EXPECT_EQ(ok.source_mode, "L");
  const std::uint8_t* px = ok.rgb.data<std::uint8_t>();
  for (int i = 0; i < 4; ++i) EXPECT_EQ(px[3 * i], i % 2 == 0 ? 1 : 2) << i;
  Bytes zero_wide = gif_frame(2, 2, {0x4C, 0x01});
  zero_wide[13 + 5] = 0;  // the frame's width, on a 2 x 2 screen
  std::string empty = write_temp("empty_frame.gif", zero_wide);
  expect_error<FormatError>([&] { read_image(empty); }, {empty, "first frame is empty"});
}

// Decoded rows of a hand-coded LZW stream against what Pillow 11.3 gives for the same file.
std::vector<int> grey_levels(const std::string& path) {
  DecodedImage im = read_image(path);
  std::vector<int> out;
  const std::uint8_t* px = im.rgb.data<std::uint8_t>();
  for (std::int64_t i = 0; i < im.rgb.numel(); i += 3) out.push_back(px[i]);
  return out;
}

TEST(DecodeGif, LzwCornerCasesAsPillow) {
  // clear, 1, then 6 = the entry being defined ("1" + its first byte), end: 1 1 1.
  EXPECT_EQ(grey_levels(write_temp("kwkwk.gif", gif_frame(3, 1, {0x8C, 0x0B}))),
            (std::vector<int>{1, 1, 1}));
  // clear, 0, 1, 2 in 3 bits; adding entry 7 widens the codes: 7 ("1 2"), 8 ("2 1", just
  // defined), end in 4 bits.
  EXPECT_EQ(grey_levels(write_temp("widen.gif", gif_frame(7, 1, {0x44, 0x74, 0x58}))),
            (std::vector<int>{0, 1, 2, 1, 2, 2, 1}));
  // Two stray bytes between the screen and the frame are skipped (Pillow reads past them).
  Bytes stray = gif_frame(2, 2, {0x8C, 0x5C});
  stray.insert(stray.begin() + 13, {0x00, 0x00});
  EXPECT_EQ(grey_levels(write_temp("stray.gif", stray)), (std::vector<int>{1, 2, 1, 2}));
}

TEST(DecodeErrors, GifWithoutAFrameOrCutInItsHeader) {
  std::string cut = write_temp("cut.gif", Bytes{'G', 'I', 'F', '8', '9', 'a', 1, 0, 1, 0});
  expect_error<FormatError>([&] { read_image(cut); }, {cut, "GIF header"});
  Bytes empty = gif_screen(4, 4);
  empty.push_back(';');  // the trailer right after the screen
  std::string epath = write_temp("no_frame.gif", empty);
  expect_error<FormatError>([&] { read_image(epath); }, {epath, "GIF without an image"});
  Bytes junk = gif_screen(4, 4);
  junk.push_back('#');  // a byte that starts no record (skipped), then the end of the file
  std::string jpath = write_temp("junk_block.gif", junk);
  expect_error<FormatError>([&] { read_image(jpath); }, {jpath, "GIF"});
}

TEST(DecodeErrors, TruncatedFilesOfEveryFormat) {
  for (const char* name : {"images/cat_landscape.jpg", "images/rocket_progressive.jpg",
                           "images/astronaut_square.png", "images/cat.webp",
                           "images/coffee_lossless.webp", "images/palette.png",
                           "images/gray_levels.gif", "images/offset_transparent.gif"}) {
    Bytes full = read_bytes(data_path(name));
    for (double fraction : {0.5, 0.9}) {
      Bytes part(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(full.size() * fraction));
      std::string path = write_temp("truncated_" + std::to_string(part.size()), part);
      expect_error<FormatError>([&] { read_image(path); }, {path});
    }
    // Cut inside the header.
    Bytes head(full.begin(), full.begin() + 20);
    std::string path = write_temp("head_only", head);
    expect_error<FormatError>([&] { read_image(path); }, {path});
  }
}

// Only the first frame of a GIF is read, so a file cut inside a later frame still gives it (as
// Pillow does: Image.open + load reads frame 0 only). anim.gif's first frame ends before half
// of the file.
TEST(DecodeGif, CutInsideALaterFrameStillGivesTheFirst) {
  Bytes full = read_bytes(data_path("images/anim.gif"));
  Bytes part(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(full.size() * 3 / 4));
  std::string path = write_temp("anim_cut.gif", part);
  DecodedImage whole = read_image(data_path("images/anim.gif"));
  DecodedImage cut = read_image(path);
  ASSERT_EQ(cut.rgb.shape(), whole.rgb.shape());
  EXPECT_EQ(std::memcmp(cut.rgb.data<std::uint8_t>(), whole.rgb.data<std::uint8_t>(),
                        static_cast<std::size_t>(whole.rgb.numel())),
            0);
  EXPECT_EQ(cut.format, ImageFormat::Gif);
  EXPECT_EQ(cut.source_mode, "P");
}

TEST(DecodeErrors, TruncatedJpegSaysTruncated) {
  Bytes full = read_bytes(data_path("images/motorcycle_left.jpg"));
  Bytes part(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(full.size() / 2));
  std::string path = write_temp("half_motorcycle.jpg", part);
  expect_error<FormatError>([&] { read_image(path); }, {path, "truncated"});
}

TEST(DecodeErrors, CorruptData) {
  // JPEG: garbage after the SOI marker.
  Bytes jpg = {0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x02};
  for (int i = 0; i < 64; ++i) jpg.push_back(static_cast<std::uint8_t>(i * 37));
  std::string jpath = write_temp("garbage.jpg", jpg);
  expect_error<FormatError>([&] { read_image(jpath); }, {jpath, "JPEG"});
  // PNG: a broken IHDR CRC.
  Bytes png = read_bytes(data_path("images/tiny_5x4.png"));
  png[29] ^= 0xFF;
  std::string ppath = write_temp("bad_crc.png", png);
  expect_error<FormatError>([&] { read_image(ppath); }, {ppath, "PNG"});
  // PNG: corrupt compressed data.
  Bytes png2 = make_png(4, 4, 8, 2, std::vector<Bytes>(4, Bytes(12, 7)));
  for (std::size_t i = 45; i < 55 && i < png2.size(); ++i) png2[i] ^= 0x5A;
  std::string p2 = write_temp("bad_zlib.png", png2);
  expect_error<FormatError>([&] { read_image(p2); }, {p2});
  // WebP: a valid RIFF header around garbage.
  Bytes webp = {'R', 'I', 'F', 'F', 40, 0, 0, 0, 'W', 'E', 'B', 'P', 'V', 'P', '8', ' ', 28, 0, 0, 0};
  for (int i = 0; i < 28; ++i) webp.push_back(static_cast<std::uint8_t>(i * 91));
  std::string wpath = write_temp("garbage.webp", webp);
  expect_error<FormatError>([&] { read_image(wpath); }, {wpath, "WebP"});
  // Zero-sized image in a well-formed PNG header.
  Bytes zero = make_png(0, 3, 8, 2, {});
  std::string zpath = write_temp("zero_width.png", zero);
  expect_error<FormatError>([&] { read_image(zpath); }, {zpath});
}

TEST(DecodeLimits, PixelLimitIsConfigurable) {
  const std::string path = data_path("images/cat_landscape.jpg");  // 451 x 300 = 135,300 pixels
  DecodeOptions tight;
  tight.max_pixels = 135'299;
  expect_error<InvalidArgument>([&] { read_image(path, tight); }, {path, "451x300", "135299"});
  tight.max_pixels = 135'300;
  EXPECT_EQ(read_image(path, tight).rgb.shape(), (Shape{300, 451, 3}));
  DecodeOptions none;
  none.max_pixels = 0;
  EXPECT_EQ(read_image(path, none).rgb.shape(), (Shape{300, 451, 3}));
}

// A GIF's image is its screen grown to cover the first frame: the limit applies to that size
// (29 x 15 here, on a 20 x 10 screen).
TEST(DecodeLimits, GifLimitAppliesToTheGrownImage) {
  const std::string path = data_path("images/grown_no_palette.gif");
  DecodeOptions tight;
  tight.max_pixels = 434;
  expect_error<InvalidArgument>([&] { read_image(path, tight); }, {path, "29x15", "434"});
  tight.max_pixels = 435;
  EXPECT_EQ(read_image(path, tight).rgb.shape(), (Shape{15, 29, 3}));
}

// Headers that claim enormous images are rejected before any pixel memory is allocated (the
// files are a few hundred bytes; allocating would need tens of gigabytes).
TEST(DecodeLimits, BombsRejectedFromTheHeader) {
  Bytes png = make_png(100'000, 100'000, 8, 2, {Bytes(300'000, 0)});
  std::string ppath = write_temp("bomb.png", png);
  expect_error<InvalidArgument>([&] { read_image(ppath); }, {ppath, "100000x100000", "89478485"});

  // A real JPEG with its SOF dimensions patched to 60000 x 60000.
  Bytes jpg = read_bytes(data_path("images/gray.jpg"));
  bool patched = false;
  for (std::size_t i = 2; i + 9 < jpg.size(); ++i) {
    if (jpg[i] == 0xFF && (jpg[i + 1] == 0xC0 || jpg[i + 1] == 0xC2)) {
      jpg[i + 5] = 0xEA; jpg[i + 6] = 0x60;  // height 60000
      jpg[i + 7] = 0xEA; jpg[i + 8] = 0x60;  // width 60000
      patched = true;
      break;
    }
  }
  ASSERT_TRUE(patched);
  std::string jpath = write_temp("bomb.jpg", jpg);
  expect_error<InvalidArgument>([&] { read_image(jpath); }, {jpath, "60000x60000"});

  // A GIF whose screen and frame are 60000 x 60000, with a few bytes of image data.
  Bytes gif = gif_screen(60000, 60000);
  for (std::uint8_t b : {0x2C, 0, 0, 0, 0, 0x60, 0xEA, 0x60, 0xEA, 0, 2, 2, 0x4C, 0x01, 0, 0x3B}) {
    gif.push_back(b);
  }
  std::string gpath = write_temp("bomb.gif", gif);
  expect_error<InvalidArgument>([&] { read_image(gpath); }, {gpath, "60000x60000"});
}

}  // namespace
}  // namespace mmembed::vision
