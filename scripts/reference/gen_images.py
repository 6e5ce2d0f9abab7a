"""Derive the test images from scikit-image's sample photos (Debian python3-skimage), deterministically.

Writes <out>/images/*.{jpg,png,webp} and returns a list of image descriptors (also stored in the manifest).
All operations are plain Pillow calls with fixed parameters; no randomness.
"""
import os
import struct

import numpy as np
from PIL import Image

SKIMAGE_DATA = "/usr/lib/python3/dist-packages/skimage/data"

# origin and license as stated in skimage's docstrings (skimage/data/_fetchers.py)
SOURCES = {
    "chelsea.png": "cat 'Chelsea'; CC0 by the photographer (Stefan van der Walt)",
    "coffee.png": "cup of coffee; CC0 by the photographer (Rachel Michetti), courtesy of Pikolo Espresso Bar",
    "astronaut.png": "Eileen Collins, NASA Great Images database; public domain",
    "camera.png": "cameraman; CC0 by the photographer (Lav Varshney)",
    "rocket.jpg": "Falcon 9 / DSCOVR launch, SpaceX photos; released into the public domain by SpaceX",
    "motorcycle_left.png": "Middlebury 2014 stereo benchmark (Scharstein et al.), down-sampled by scikit-image; "
    "shipped in scikit-image (BSD-3-Clause package)",
    "motorcycle_right.png": "Middlebury 2014 stereo benchmark (Scharstein et al.), down-sampled by scikit-image; "
    "shipped in scikit-image (BSD-3-Clause package)",
}


def _lzw_literal(indices, min_code_size):
    """An LZW stream that codes every pixel as a literal, with a clear code before the table would
    widen the codes: valid for every decoder, and lets a fixture hold any index (also ones past
    its colour table, which Pillow's own encoder would remap)."""
    clear, eoi = 1 << min_code_size, (1 << min_code_size) + 1
    width = min_code_size + 1
    max_run = (1 << width) - (eoi + 1)
    codes, run = [clear], 0
    for v in indices:
        assert 0 <= v < clear, v
        if run == max_run:
            codes.append(clear)
            run = 0
        codes.append(int(v))
        run += 1
    codes.append(eoi)
    out, acc, nbits = bytearray(), 0, 0
    for c in codes:
        acc |= c << nbits
        nbits += width
        while nbits >= 8:
            out.append(acc & 255)
            acc >>= 8
            nbits -= 8
    if nbits:
        out.append(acc & 255)
    return bytes(out)


def _colour_table(palette):
    n = len(palette) // 3
    bits = max(1, (n - 1).bit_length())
    return bytes(palette) + bytes(3 * (1 << bits) - len(palette)), bits - 1


def write_gif(path, screen_wh, box, indices, min_code_size, global_palette=None, local_palette=None,
              transparency=None, interlace=False):
    """A one-frame GIF89a written field by field: screen size, optional global / local colour
    tables, optional graphic control extension with a transparent index, the frame at box =
    (left, top, width, height), optionally interlaced."""
    out = bytearray(b"GIF89a")
    flags, gct = 0, b""
    if global_palette is not None:
        gct, b = _colour_table(global_palette)
        flags = 0x80 | b
    out += struct.pack("<HHBBB", screen_wh[0], screen_wh[1], flags, 0, 0) + gct
    if transparency is not None:
        out += b"\x21\xf9\x04" + struct.pack("<BHB", 1, 10, transparency) + b"\x00"
    x, y, w, h = box
    fl, lct = 0, b""
    if local_palette is not None:
        lct, b = _colour_table(local_palette)
        fl = 0x80 | b
    rows = [list(indices[r * w:(r + 1) * w]) for r in range(h)]
    if interlace:
        fl |= 0x40
        order = list(range(0, h, 8)) + list(range(4, h, 8)) + list(range(2, h, 4)) + list(range(1, h, 2))
        rows = [rows[r] for r in order]
    out += b"\x2c" + struct.pack("<HHHHB", x, y, w, h, fl) + lct
    out.append(min_code_size)
    data = _lzw_literal([v for r in rows for v in r], min_code_size)
    for i in range(0, len(data), 255):
        out.append(len(data[i:i + 255]))
        out += data[i:i + 255]
    out += b"\x00\x3b"
    with open(path, "wb") as f:
        f.write(bytes(out))


def _src(name):
    im = Image.open(os.path.join(SKIMAGE_DATA, name))
    im.load()
    return im


def build(out_root):
    d = os.path.join(out_root, "images")
    os.makedirs(d, exist_ok=True)
    items = []

    def save(img, fname, fmt, derivation, source, kind, **kw):
        path = os.path.join(d, fname)
        img.save(path, fmt, **kw)
        items.append(
            {
                "id": os.path.splitext(fname)[0],
                "file": "images/" + fname,
                "kind": kind,
                "source": source,
                "derivation": derivation,
            }
        )

    chelsea = _src("chelsea.png").convert("RGB")
    coffee = _src("coffee.png").convert("RGB")
    astro = _src("astronaut.png").convert("RGB")
    camera = _src("camera.png")  # mode L
    rocket = _src("rocket.jpg").convert("RGB")
    moto_l = _src("motorcycle_left.png").convert("RGB")
    moto_r = _src("motorcycle_right.png").convert("RGB")

    save(chelsea, "cat_landscape.jpg", "JPEG", "chelsea.png saved as baseline JPEG q90 (4:2:0)", "chelsea.png",
         "landscape RGB JPEG; lesson example 3 (cat)", quality=90)
    save(moto_l, "motorcycle_left.jpg", "JPEG", "motorcycle_left.png saved as JPEG q85 (4:2:0)",
         "motorcycle_left.png", "landscape RGB JPEG; lesson example 1 (motorcycle)", quality=85)
    save(moto_r.crop((200, 20, 500, 480)), "motorcycle_portrait.jpg", "JPEG",
         "motorcycle_right.png crop box (200,20,500,480) -> 300x460, JPEG q85", "motorcycle_right.png",
         "portrait RGB JPEG; lesson example 2 (motorcycle)", quality=85)
    save(astro.resize((320, 320), Image.LANCZOS), "astronaut_square_444.jpg", "JPEG",
         "astronaut.png LANCZOS-resized to 320x320, JPEG q90 with 4:4:4 sampling", "astronaut.png",
         "square RGB JPEG 4:4:4", quality=90, subsampling=0)
    save(rocket.resize((320, 214), Image.LANCZOS), "rocket_422.jpg", "JPEG",
         "rocket.jpg LANCZOS-resized to 320x214, JPEG q88 with 4:2:2 sampling", "rocket.jpg",
         "landscape RGB JPEG 4:2:2", quality=88, subsampling=1)
    save(astro.resize((128, 128), Image.LANCZOS), "astronaut_square.png", "PNG",
         "astronaut.png LANCZOS-resized to 128x128, RGB PNG", "astronaut.png", "square RGB PNG")
    save(chelsea.crop((200, 100, 201, 101)), "tiny_1x1.png", "PNG", "chelsea.png pixel (200,100), 1x1 RGB PNG",
         "chelsea.png", "tiny 1x1")
    save(chelsea.crop((180, 90, 185, 94)), "tiny_5x4.png", "PNG", "chelsea.png crop box (180,90,185,94): 5x4 RGB PNG",
         "chelsea.png", "tiny 5x4 (W x H)")
    save(coffee.crop((300, 50, 307, 350)), "tiny_7x300.png", "PNG", "coffee.png crop box (300,50,307,350): 7 wide x 300 tall",
         "coffee.png", "tiny thin 7x300 (W x H)")
    save(coffee.crop((0, 200, 600, 207)), "tiny_600x7.png", "PNG", "coffee.png crop box (0,200,600,207): 600 wide x 7 tall",
         "coffee.png", "tiny thin 600x7 (W x H)")
    save(moto_l.crop((0, 180, 741, 300)).resize((1200, 150), Image.LANCZOS), "very_wide.jpg", "JPEG",
         "motorcycle_left.png crop (0,180,741,300) LANCZOS-resized to 1200x150, JPEG q85", "motorcycle_left.png",
         "very wide 8:1 RGB JPEG", quality=85)
    save(coffee.resize((4000, 2667), Image.BICUBIC), "large_4000.jpg", "JPEG",
         "coffee.png BICUBIC-upscaled to 4000x2667, JPEG q60", "coffee.png", "large (4000 px long side)", quality=60)
    save(camera.resize((256, 256), Image.LANCZOS), "gray.jpg", "JPEG",
         "camera.png (L) LANCZOS-resized to 256x256, grayscale JPEG q90", "camera.png", "grayscale (L) JPEG", quality=90)
    save(coffee.resize((300, 200), Image.LANCZOS).convert("CMYK"), "cmyk.jpg", "JPEG",
         "coffee.png LANCZOS-resized to 300x200, convert('CMYK'), JPEG q90 (Adobe inverted CMYK)", "coffee.png",
         "CMYK JPEG", quality=90)
    save(rocket, "rocket_progressive.jpg", "JPEG", "rocket.jpg (640x427) saved as progressive JPEG q85",
         "rocket.jpg", "progressive RGB JPEG", quality=85, progressive=True)
    # RGBA: alpha is a horizontal ramp, so the RGB under transparent pixels is kept by convert("RGB")
    c = chelsea.crop((100, 50, 300, 200))
    alpha = Image.fromarray(np.tile(np.linspace(0, 255, 200).astype(np.uint8)[None, :], (150, 1)), "L")
    rgba = c.copy()
    rgba.putalpha(alpha)
    save(rgba, "rgba.png", "PNG", "chelsea.png crop (100,50,300,200) with alpha = horizontal ramp 0..255, RGBA PNG",
         "chelsea.png", "RGBA PNG")
    save(astro.resize((200, 200), Image.LANCZOS).quantize(colors=64), "palette.png", "PNG",
         "astronaut.png LANCZOS-resized to 200x200, quantize(colors=64) (median cut), P-mode PNG", "astronaut.png",
         "palette (P) PNG")
    g = np.asarray(camera.resize((256, 256), Image.LANCZOS), dtype=np.uint16) * 257
    g16 = Image.fromarray(g.astype("<u2"), "I;16")
    save(g16, "gray16.png", "PNG", "camera.png LANCZOS-resized to 256x256, values x257 as 16-bit grayscale PNG",
         "camera.png", "16-bit grayscale PNG (opens as I;16)")
    save(chelsea.resize((300, 200), Image.LANCZOS), "cat.webp", "WEBP",
         "chelsea.png LANCZOS-resized to 300x200, lossy WebP q80 (method 4)", "chelsea.png", "lossy WebP",
         quality=80, method=4)
    save(coffee.resize((150, 100), Image.LANCZOS), "coffee_lossless.webp", "WEBP",
         "coffee.png LANCZOS-resized to 150x100, lossless WebP", "coffee.png", "lossless WebP", lossless=True)
    # GIF: the first frame of an animation (Pillow writes it interlaced), an identity-grey table
    # (opens as "L"), and two frames written field by field for what Pillow's encoder never
    # writes: a first frame smaller than the screen, with a transparent index and a local table
    # shorter than its indices; a frame reaching past the screen, without any colour table.
    a0 = astro.resize((160, 160), Image.LANCZOS).quantize(colors=200)
    a1 = astro.transpose(Image.Transpose.FLIP_LEFT_RIGHT).resize((160, 160), Image.LANCZOS).quantize(colors=200)
    save(a0, "anim.gif", "GIF", "astronaut.png LANCZOS-resized to 160x160, quantize(colors=200), then the same "
         "flipped left-right as a second frame: animated GIF (Pillow save_all, interlaced, duration 100 ms)",
         "astronaut.png", "animated GIF (2 frames, first one used)", save_all=True, append_images=[a1],
         duration=100, loop=0)
    save(camera.resize((96, 96), Image.LANCZOS), "gray_levels.gif", "GIF",
         "camera.png (L) LANCZOS-resized to 96x96, saved as GIF with optimize=False (identity grey table: opens "
         "as L)", "camera.png", "grayscale GIF (opens as L)", optimize=False)
    q = chelsea.crop((150, 60, 180, 80)).quantize(colors=16)
    pal = q.getpalette()[:48]
    write_gif(os.path.join(d, "offset_transparent.gif"), (48, 40), (9, 6, 30, 20), list(q.getdata()), 4,
              global_palette=pal, local_palette=pal[:24][::-1], transparency=3)
    items.append({"id": "offset_transparent", "file": "images/offset_transparent.gif",
                  "kind": "GIF, first frame 30x20 at (9, 6) on a 48x40 screen, transparent index 3, "
                          "8-colour local table with indices up to 15",
                  "source": "chelsea.png",
                  "derivation": "chelsea.png crop (150,60,180,80) quantize(colors=16); indices written with a "
                                "16-colour global table, an 8-colour local table (the first 8 entries' bytes "
                                "reversed) and a graphic control extension (transparent index 3) by write_gif"})
    g = np.asarray(camera.resize((24, 12), Image.LANCZOS), dtype=np.uint8)
    write_gif(os.path.join(d, "grown_no_palette.gif"), (20, 10), (5, 3, 24, 12), g.reshape(-1).tolist(), 8,
              interlace=True)
    items.append({"id": "grown_no_palette", "file": "images/grown_no_palette.gif",
                  "kind": "GIF without colour tables (opens as L), interlaced 24x12 frame at (5, 3) on a "
                          "20x10 screen (the image grows to 29x15)",
                  "source": "camera.png",
                  "derivation": "camera.png LANCZOS-resized to 24x12, grey levels written as indices by write_gif"})
    # A local table that is the identity grey ramp under a colour global table: Pillow opens "L"
    # but converts through the global table (its quirk, kept).
    q = coffee.crop((100, 100, 120, 112)).quantize(colors=8)
    write_gif(os.path.join(d, "local_grey_table.gif"), (20, 12), (0, 0, 20, 12), list(q.getdata()), 3,
              global_palette=q.getpalette()[:24], local_palette=[v for i in range(8) for v in (i, i, i)])
    items.append({"id": "local_grey_table", "file": "images/local_grey_table.gif",
                  "kind": "GIF whose local table is the identity grey ramp, under an 8-colour global table",
                  "source": "coffee.png",
                  "derivation": "coffee.png crop (100,100,120,112) quantize(colors=8); its table as the global "
                                "one, the grey ramp 0..7 as the local one, written by write_gif"})
    for it in items:
        it["source_origin"] = SOURCES[it["source"]]
        it["source_path"] = os.path.join(SKIMAGE_DATA, it["source"])
        im = Image.open(os.path.join(out_root, it["file"]))
        it["opened_mode"] = im.mode
        it["opened_size_wh"] = list(im.size)
        it["format"] = im.format
    return items
