"""Derive the test images from scikit-image's sample photos (Debian python3-skimage), deterministically.

Writes <out>/images/*.{jpg,png,webp} and returns a list of image descriptors (also stored in the manifest).
All operations are plain Pillow calls with fixed parameters; no randomness.
"""
import os

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
    for it in items:
        it["source_origin"] = SOURCES[it["source"]]
        it["source_path"] = os.path.join(SKIMAGE_DATA, it["source"])
        im = Image.open(os.path.join(out_root, it["file"]))
        it["opened_mode"] = im.mode
        it["opened_size_wh"] = list(im.size)
        it["format"] = im.format
    return items
