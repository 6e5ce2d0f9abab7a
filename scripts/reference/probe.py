"""Questions from the specs' UNCONFIRMED lists, answered by running the pinned reference.

Writes tests/data/reference_probe.json (deterministic); docs/numerics.md (section "Reference versions and settled UNCONFIRMED items") summarises it.
"""
import collections
import inspect
import io
import os
import pickletools
import random
import shutil
import struct
import tempfile
import zipfile

import numpy as np
import torch
from PIL import Image


# --- spec D: Pillow bicubic/bilinear resampling re-implemented from the spec, compared bit-for-bit --------------

def _bicubic(x, a=-0.5):
    x = abs(x)
    if x < 1.0:
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1
    if x < 2.0:
        return (((x - 5) * x + 8) * x - 4) * a
    return 0.0


def _bilinear(x):
    x = abs(x)
    return 1.0 - x if x < 1.0 else 0.0


def _coeffs(in_size, out_size, filt, support):
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = support * filterscale
    inv = 1.0 / filterscale
    res = []
    for i in range(out_size):
        center = (i + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_size)
        w = [filt((j + xmin - center + 0.5) * inv) for j in range(xmax - xmin)]
        ww = 0.0
        for v in w:
            ww += v
        if ww != 0.0:
            w = [v / ww for v in w]
        k = [int(v * (1 << 22) + 0.5) if v >= 0 else int(v * (1 << 22) - 0.5) for v in w]
        res.append((xmin, np.array(k, dtype=np.int64)))
    return res


def _pass(img, coeffs, axis):
    # img: uint8 [H,W,C]; resample along axis (1 = horizontal, 0 = vertical)
    src = img.astype(np.int64)
    if axis == 0:
        src = src.transpose(1, 0, 2)
    out = np.empty((src.shape[0], len(coeffs), src.shape[2]), dtype=np.int64)
    for i, (xmin, k) in enumerate(coeffs):
        acc = (1 << 21) + np.tensordot(src[:, xmin:xmin + len(k), :], k, axes=([1], [0]))
        out[:, i, :] = np.clip(acc >> 22, 0, 255)
    out = out.astype(np.uint8)
    return out.transpose(1, 0, 2) if axis == 0 else out


def spec_resize(img, size, which):
    filt, sup = (_bicubic, 2.0) if which == "bicubic" else (_bilinear, 1.0)
    h, w = img.shape[:2]
    nw, nh = size
    out = img
    if nw != w:
        out = _pass(out, _coeffs(w, nw, filt, sup), 1)
    if nh != h:
        out = _pass(out, _coeffs(h, nh, filt, sup), 0)
    return out


def resample_check():
    rng = random.Random(7)
    nrng = np.random.RandomState(7)
    cases, fails = 0, []
    for n in range(60):
        w, h = rng.randint(1, 120), rng.randint(1, 120)
        nw, nh = rng.randint(1, 160), rng.randint(1, 160)
        img = nrng.randint(0, 256, size=(h, w, 3)).astype(np.uint8)
        if n % 3 == 0:
            img = np.where(img > 128, 255, 0).astype(np.uint8)  # saturated: exercises clipping
        for which, flt in (("bicubic", Image.BICUBIC), ("bilinear", Image.BILINEAR)):
            ref = np.asarray(Image.fromarray(img, "RGB").resize((nw, nh), flt))
            ours = spec_resize(img, (nw, nh), which)
            cases += 1
            if not np.array_equal(ref, ours):
                fails.append([w, h, nw, nh, which, int(np.abs(ref.astype(int) - ours).max())])
    # the real photo path: cat photo to the BridgeTower base size
    cat = np.asarray(Image.open(os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data", "images",
                                             "cat_landscape.jpg")).convert("RGB")) if False else None
    return {"cases": cases, "mismatches": fails,
            "algorithm": "spec clip-and-formats.md D.2-D.4: Keys a=-0.5 / triangle, antialias support*scale, "
                         "taps [int(c-s+0.5), int(c+s+0.5)), normalised double weights, 22-bit fixed point rounded "
                         "half away from zero, acc starts at 1<<21, >>22, clip to [0,255], horizontal pass first "
                         "into uint8, pass skipped when that axis keeps its size"}


# --- spec E: torch.save zip layout and data.pkl opcodes ------------------------------------------------------

def torch_zip_probe(path):
    z = zipfile.ZipFile(path)
    infos = z.infolist()
    names = [i.filename for i in infos]
    prefix = names[0].split("/")[0]
    raw = open(path, "rb").read()
    aligned = []
    for i in infos:
        if "/data/" in i.filename:
            off = i.header_offset
            fn_len, extra_len = struct.unpack("<HH", raw[off + 26:off + 30])
            aligned.append((off + 30 + fn_len + extra_len) % 64 == 0)
    pkl = z.read(prefix + "/data.pkl")
    ops = collections.Counter()
    globals_seen = collections.Counter()
    proto = None
    for op, arg, _pos in pickletools.genops(pkl):
        ops[op.name] += 1
        if op.name == "PROTO":
            proto = arg
        if op.name == "GLOBAL":
            globals_seen[arg.replace(" ", ".")] += 1
    out = io.StringIO()
    pickletools.dis(pkl[:1200] if len(pkl) > 1200 else pkl, out=out) if False else None
    first_ops = []
    for n, (op, arg, pos) in enumerate(pickletools.genops(pkl)):
        if n >= 60:
            break
        first_ops.append("%s %s" % (op.name, "" if arg is None else repr(arg)))
    return {
        "file": os.path.relpath(path, os.path.join(os.path.dirname(path), "..", "..")),
        "archive_prefix": prefix,
        "records": [n[len(prefix) + 1:] for n in names if "/data/" not in n] + ["data/<n> x %d" % sum(
            "/data/" in n for n in names)],
        "has_serialization_id": any(n.endswith(".data/serialization_id") for n in names),
        "version_record": (z.read(prefix + "/version").decode() if prefix + "/version" in names else None),
        "data_version_record": (z.read(prefix + "/.data/version").decode()
                                if prefix + "/.data/version" in names else None),
        "byteorder_record": (z.read(prefix + "/byteorder").decode() if prefix + "/byteorder" in names else None),
        "compress_types": sorted({i.compress_type for i in infos}),
        "zip_date_times": sorted({"%04d-%02d-%02d %02d:%02d:%02d" % i.date_time for i in infos}),
        "data_records_64_aligned": all(aligned),
        "pickle_protocol": proto,
        "opcode_counts": dict(sorted(ops.items())),
        "globals": dict(sorted(globals_seen.items())),
        "first_60_opcodes": first_ops,
    }


# --- misc reference behaviours ------------------------------------------------------------------------------

def processor_sizes():
    from transformers import BridgeTowerImageProcessor, CLIPImageProcessor

    import gen_preprocess as gp

    procs = gp.processors()
    res = {}
    for (w, h) in [(640, 480), (480, 640), (500, 500), (640, 427), (1280, 720), (1920, 1080), (3000, 1000),
                   (451, 300), (300, 7), (7, 300), (4, 5), (2, 3)]:
        img = Image.fromarray(np.full((h, w, 3), 128, np.uint8), "RGB")
        row = {}
        for pname, (proc, kwargs, _d) in procs.items():
            out, cap, err = gp.run_one(proc, kwargs, img)
            row[pname] = {"resized_hw": list(cap["resized"].shape[:2]) if "resized" in cap else None,
                          "cropped_hw": list(cap["cropped"].shape[:2]) if "cropped" in cap else None,
                          "pixel_values_shape": list(out["pixel_values"].shape) if out is not None else None,
                          "error": err}
        res["%dx%d" % (w, h)] = row
    bare = BridgeTowerImageProcessor()
    o = bare(Image.fromarray(np.full((480, 640, 3), 128, np.uint8)), return_tensors="np")
    res["bare_bt_base_no_do_center_crop_640x480"] = {"pixel_values_shape": list(o["pixel_values"].shape)}
    return res


def pixel_math():
    from transformers import CLIPImageProcessor

    u = np.arange(256, dtype=np.uint8).reshape(1, 256, 1).repeat(3, axis=2)
    p = CLIPImageProcessor(do_resize=False, do_center_crop=False, do_normalize=False)
    got = p(Image.fromarray(np.tile(u, (4, 1, 1)), "RGB"), return_tensors="np")["pixel_values"][0, 0, 0]
    div = (np.arange(256, dtype=np.float32) / np.float32(255.0)).astype(np.float32)
    mul64 = (np.arange(256, dtype=np.float64) * (1 / 255)).astype(np.float32)
    mul32 = np.arange(256, dtype=np.float32) * np.float32(1 / 255)
    pn = CLIPImageProcessor(do_resize=False, do_center_crop=False)
    gotn = pn(Image.fromarray(np.tile(u, (4, 1, 1)), "RGB"), return_tensors="np")["pixel_values"][0, :, 0, :]
    mean = np.array([0.48145466, 0.4578275, 0.40821073], np.float32)[:, None]
    std = np.array([0.26862954, 0.26130258, 0.27577711], np.float32)[:, None]
    norm_f32 = ((div[None, :] - mean) / std).astype(np.float32)
    return {
        "rescale_equals_u8_div_255f_float32": bool(np.array_equal(got, div)),
        "rescale_equals_float32_of_double_mul": bool(np.array_equal(got, mul64)),
        "rescale_equals_float32_mul_by_float32_recip": bool(np.array_equal(got, mul32)),
        "normalize_equals_float32_(x-mean)/std": bool(np.array_equal(gotn, norm_f32)),
        "normalize_max_abs_diff_vs_float32_formula": float(np.abs(gotn - norm_f32).max()),
    }


def pil_modes(out_root):
    res = {}
    g16 = Image.open(os.path.join(out_root, "images", "gray16.png"))
    a = np.asarray(g16)
    rgb = np.asarray(g16.convert("RGB"))
    res["I;16_to_RGB"] = {"opened_mode": g16.mode, "input_min_max": [int(a.min()), int(a.max())],
                          "rgb_min_max": [int(rgb.min()), int(rgb.max())],
                          "rule": "clip(v, 0, 255) (values are NOT scaled by 1/256)"
                          if np.array_equal(rgb[..., 0], np.clip(a, 0, 255).astype(np.uint8)) else "other"}
    rgba = Image.open(os.path.join(out_root, "images", "rgba.png"))
    ra = np.asarray(rgba)
    res["RGBA_to_RGB_drops_alpha_without_compositing"] = bool(np.array_equal(np.asarray(rgba.convert("RGB")), ra[..., :3]))
    cm = Image.open(os.path.join(out_root, "images", "cmyk.jpg"))
    c = np.asarray(cm).astype(np.int64)
    nk = 255 - c[..., 3:4]
    t = c[..., :3] * nk + 128
    div = ((t >> 8) + t) >> 8
    spec = np.clip(nk - div, 0, 255).astype(np.uint8)
    res["CMYK_to_RGB_matches_spec_formula"] = bool(np.array_equal(np.asarray(cm.convert("RGB")), spec))
    res["CMYK_jpeg_mode"] = cm.mode
    return res


def tokenizer_classes(out_root):
    from transformers import AutoTokenizer

    res = {}
    for name in sorted(os.listdir(os.path.join(out_root, "models"))):
        d = os.path.join(out_root, "models", name)
        res[name] = type(AutoTokenizer.from_pretrained(d)).__name__
    # a BridgeTower folder laid out like the Hub repos: config.json + tokenizer.json + vocab.json only
    tmp = tempfile.mkdtemp()
    try:
        src = os.path.join(out_root, "models", "bridgetower-large-tiny")
        for fn in ("config.json", "tokenizer.json", "vocab.json"):
            if os.path.exists(os.path.join(src, fn)):  # transformers 5's save_pretrained writes no vocab.json
                shutil.copy(os.path.join(src, fn), tmp)
        t = AutoTokenizer.from_pretrained(tmp)
        res["bridgetower_hub_layout(config+tokenizer.json+vocab.json)"] = type(t).__name__
        res["bridgetower_hub_layout_model_max_length"] = (t.model_max_length if t.model_max_length < 1e10
                                                          else "VERY_LARGE_INTEGER (no limit)")
        try:
            res["bridgetower_hub_layout_use_fast_False"] = type(
                AutoTokenizer.from_pretrained(tmp, use_fast=False)).__name__
        except Exception as e:  # noqa: BLE001
            res["bridgetower_hub_layout_use_fast_False"] = "fails: %s: %s" % (type(e).__name__, str(e)[:120])
    finally:
        shutil.rmtree(tmp)
    return res


def clip_eos_rule():
    from transformers.models.clip import modeling_clip

    # transformers 5 folded CLIPTextTransformer into CLIPTextModel
    holder = getattr(modeling_clip, "CLIPTextTransformer", None) or modeling_clip.CLIPTextModel
    src = inspect.getsource(holder.forward)
    return {"legacy_branch_present": "self.eos_token_id == 2" in src,
            "rule": "if config eos_token_id == 2: pooled index = argmax(input_ids) per row (first max); "
                    "else: first position where input_ids == eos_token_id"
            if "self.eos_token_id == 2" in src else "unknown"}


def build(out_root):
    import sys

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    return {
        "pillow_resample_vs_spec_D": resample_check(),
        "torch_save_zip": torch_zip_probe(os.path.join(out_root, "models", "clip-tiny-gelu", "pytorch_model.bin")),
        "torch_save_zip_bridgetower": {k: v for k, v in torch_zip_probe(
            os.path.join(out_root, "models", "bridgetower-large-tiny", "pytorch_model.bin")).items()
            if k in ("globals", "opcode_counts", "has_serialization_id", "version_record", "pickle_protocol",
                     "data_records_64_aligned", "compress_types", "zip_date_times")},
        "processor_sizes": processor_sizes(),
        "pixel_math": pixel_math(),
        "pil_mode_conversions": pil_modes(out_root),
        "autotokenizer_classes": tokenizer_classes(out_root),
        "clip_eos_rule": clip_eos_rule(),
        "torch_threads": torch.get_num_threads(),
    }
