"""Synthetic image-caption scenes for the toy models (scripts/reference/train_toy.py).

A scene is one or two coloured shapes on a textured or photo-crop background, with a caption
from varied templates (the lesson's among them). Everything is drawn with Pillow from a seeded
numpy Generator, so a seed gives the same scenes, pixel for pixel, on every machine.

    rng = np.random.default_rng(7)
    scene = make_scene(rng, photos, two_objects=False)
    scene.image          # PIL.Image, RGB
    scene.caption        # "a photo of a big red circle"
    scene.label          # "red circle" (single object) or "red circle left of blue square"
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SHAPES = ["circle", "square", "triangle", "star", "cross"]
COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 170, 40),
    "blue": (35, 60, 220),
    "yellow": (240, 220, 30),
    "purple": (140, 40, 180),
    "orange": (250, 140, 20),
}
COLOUR_NAMES = list(COLOURS)
# Single-object labels: "red circle", ... (30 classes), the zero-shot classes.
CLASSES = [f"{c} {s}" for c in COLOUR_NAMES for s in SHAPES]

# The lesson's templates first (a picture of / an image of), then others.
SINGLE_TEMPLATES = [
    "a picture of a {}",
    "an image of a {}",
    "a photo of a {}",
    "a {}",
    "a drawing of a {}",
    "a close-up of a {}",
    "a {} on a textured background",
    "there is a {} in the picture",
]
PAIR_TEMPLATES = [
    "a {a} left of a {b}",
    "a {b} right of a {a}",
    "a picture of a {a} left of a {b}",
    "an image of a {b} to the right of a {a}",
]
CANVAS = 96  # pixels; the toy processors resize to 64


@dataclass
class Scene:
    image: Image.Image
    caption: str
    label: str  # what makes two captions mean the same scene (used as the retrieval key)
    shapes: tuple  # ((colour, shape), ...) left to right


def load_photos(folder: str) -> list[Image.Image]:
    """Photos whose crops serve as backgrounds (the repository's test images)."""
    photos = []
    for name in sorted(os.listdir(folder)):
        if name.endswith((".jpg", ".png")) and not name.startswith("tiny"):
            im = Image.open(os.path.join(folder, name)).convert("RGB")
            if min(im.size) >= CANVAS:
                photos.append(im)
    return photos


def _background(rng: np.random.Generator, photos: list[Image.Image]) -> Image.Image:
    kind = rng.integers(0, 5)
    s = CANVAS
    if kind == 0 and photos:  # a dimmed, desaturated photo crop
        im = photos[int(rng.integers(0, len(photos)))]
        x = int(rng.integers(0, im.width - s + 1))
        y = int(rng.integers(0, im.height - s + 1))
        crop = np.asarray(im.crop((x, y, x + s, y + s)), dtype=np.float32)
        grey = crop.mean(axis=2, keepdims=True)
        crop = 0.35 * (0.3 * crop + 0.7 * grey) + 110
        return Image.fromarray(np.clip(crop, 0, 255).astype(np.uint8))
    base = rng.integers(90, 190, size=3).astype(np.float32) * 0.6 + 50
    if kind == 1:  # noise
        a = base + rng.normal(0, 18, size=(s, s, 1))
    elif kind == 2:  # stripes
        period = rng.integers(6, 16)
        angle = rng.uniform(0, math.pi)
        yy, xx = np.mgrid[0:s, 0:s]
        wave = np.sin((xx * math.cos(angle) + yy * math.sin(angle)) * 2 * math.pi / period)
        a = base + 20 * wave[..., None]
    elif kind == 3:  # gradient
        yy, xx = np.mgrid[0:s, 0:s] / s
        a = base + 50 * (xx * rng.uniform(-1, 1) + yy * rng.uniform(-1, 1))[..., None]
    else:  # checker
        cell = int(rng.integers(8, 20))
        yy, xx = np.mgrid[0:s, 0:s]
        a = base + 18 * (((xx // cell) + (yy // cell)) % 2 * 2 - 1)[..., None]
    a = np.broadcast_to(a, (s, s, 3))
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, r: float,
                colour: tuple, rot: float) -> None:
    if shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
    elif shape == "square":
        pts = [(cx + r * math.cos(rot + k * math.pi / 2), cy + r * math.sin(rot + k * math.pi / 2))
               for k in range(4)]
        draw.polygon(pts, fill=colour)
    elif shape == "triangle":
        pts = [(cx + r * math.cos(rot - math.pi / 2 + k * 2 * math.pi / 3),
                cy + r * math.sin(rot - math.pi / 2 + k * 2 * math.pi / 3)) for k in range(3)]
        draw.polygon(pts, fill=colour)
    elif shape == "star":
        pts = []
        for k in range(10):
            rr = r if k % 2 == 0 else r * 0.45
            a = rot - math.pi / 2 + k * math.pi / 5
            pts.append((cx + rr * math.cos(a), cy + rr * math.sin(a)))
        draw.polygon(pts, fill=colour)
    elif shape == "cross":
        w = r * 0.36
        for a in (rot, rot + math.pi / 2):
            c, s = math.cos(a), math.sin(a)
            pts = [(cx + dx * c - dy * s, cy + dx * s + dy * c)
                   for dx, dy in ((-r, -w), (r, -w), (r, w), (-r, w))]
            draw.polygon(pts, fill=colour)
    else:
        raise ValueError(shape)


def _colour(rng: np.random.Generator, name: str) -> tuple:
    base = np.array(COLOURS[name], dtype=np.float32)
    return tuple(int(v) for v in np.clip(base + rng.normal(0, 12, size=3), 0, 255))


def make_scene(rng: np.random.Generator, photos: list[Image.Image], two_objects: bool,
               only: tuple | None = None) -> Scene:
    """One scene. `only` = ((colour, shape), ...) fixes the objects (else drawn at random)."""
    img = _background(rng, photos)
    draw = ImageDraw.Draw(img)
    if only is None:
        n = 2 if two_objects else 1
        objs = []
        while len(objs) < n:
            o = (COLOUR_NAMES[int(rng.integers(0, len(COLOUR_NAMES)))],
                 SHAPES[int(rng.integers(0, len(SHAPES)))])
            if o not in objs:
                objs.append(o)
        objs = tuple(objs)
    else:
        objs = tuple(only)
    sizes = []
    if len(objs) == 1:
        big = bool(rng.integers(0, 2))
        r = rng.uniform(30, 40) if big else rng.uniform(17, 24)
        cx = rng.uniform(r + 2, CANVAS - r - 2)
        cy = rng.uniform(r + 2, CANVAS - r - 2)
        _draw_shape(draw, objs[0][1], cx, cy, r, _colour(rng, objs[0][0]), rng.uniform(0, math.pi))
        sizes.append("big" if big else "small")
    else:
        for k, (colour, shape) in enumerate(objs):  # k = 0 left half, 1 right half
            r = rng.uniform(15, 21)
            cx = rng.uniform(r + 2, CANVAS / 2 - r - 2) + k * CANVAS / 2
            cy = rng.uniform(r + 2, CANVAS - r - 2)
            _draw_shape(draw, shape, cx, cy, r, _colour(rng, colour), rng.uniform(0, math.pi))
    if rng.integers(0, 3) == 0:
        img = img.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.3, 0.9))))
    names = [f"{c} {s}" for c, s in objs]
    if len(objs) == 1:
        desc = names[0]
        if rng.integers(0, 3) == 0:
            desc = f"{sizes[0]} {desc}"
        template = SINGLE_TEMPLATES[int(rng.integers(0, len(SINGLE_TEMPLATES)))]
        caption = template.format(desc)
        label = names[0]
    else:
        template = PAIR_TEMPLATES[int(rng.integers(0, len(PAIR_TEMPLATES)))]
        caption = template.format(a=names[0], b=names[1])
        label = f"{names[0]} left of {names[1]}"
    return Scene(img, _articles(caption), label, objs)


def _articles(text: str) -> str:
    """'a orange' -> 'an orange' (the only colour that starts with a vowel)."""
    text = text.replace(" a orange", " an orange")
    return "an orange" + text[len("a orange"):] if text.startswith("a orange") else text


def caption_corpus() -> list[str]:
    """Every caption the generator can write (the tokenizers are trained on these)."""
    out = []
    for name in CLASSES:
        for size in ("", "big ", "small "):
            out += [_articles(t.format(size + name)) for t in SINGLE_TEMPLATES]
    for a in CLASSES:
        for b in CLASSES:
            if a != b:
                out += [_articles(t.format(a=a, b=b)) for t in PAIR_TEMPLATES]
    # The zero-shot prompts.
    out += [_articles(f"a photo of a {c}") for c in CLASSES]
    return out
