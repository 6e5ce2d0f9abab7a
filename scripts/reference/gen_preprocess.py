"""Image preprocessing goldens: decode -> convert('RGB') -> HF image processors (slow, PIL-based).

For each image and each processor setting this records the uint8 image after the processor's resize and after
its center crop (captured by wrapping the processor instance's own `resize`/`center_crop` methods while the
unmodified `preprocess` runs), and for a subset of images the final float32 `pixel_values` and `pixel_mask`.
"""
import os

import numpy as np
from PIL import Image
from common import transformers_major

if transformers_major() < 5:
    from transformers import BridgeTowerImageProcessor, CLIPImageProcessor
else:
    # transformers 5's Pillow backend is the counterpart of 4.x's slow processors (its default classes use
    # torchvision when installed: gen_v5.py records those)
    from transformers.models.bridgetower.image_processing_pil_bridgetower import (
        BridgeTowerImageProcessorPil as BridgeTowerImageProcessor)
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil as CLIPImageProcessor


# The Hub preprocessor_config.json contents (spec bridgetower.md section 5.1; CLIP spec D.7).
BT_BASE_PREPROC = {}  # base: no `size` key in the Hub file -> class defaults (288)
BT_LARGE_PREPROC = {"max_text_len": 50, "size": 294, "tokenizer": "roberta-large", "vocab_size": 50265}
CLIP_PREPROC = {
    "crop_size": 224, "do_center_crop": True, "do_normalize": True, "do_resize": True,
    "feature_extractor_type": "CLIPFeatureExtractor",
    "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
    "resample": 3, "size": 224,
}

# Storage policy (size budget): every array gets a manifest entry with dtype, shape, crc32 and sha256 of its raw
# bytes. Arrays are stored in full only for the images below (uint8 stages, up to FULL_LIMIT raw bytes each) and
# float pixel_values only for FLOAT_SUBSET; decoded RGB is stored for every image up to DECODED_LIMIT bytes.
FULL_SUBSET = {"very_wide", "tiny_1x1", "tiny_5x4", "tiny_7x300", "tiny_600x7", "gray16"}
# cat_landscape (the lesson's cat photo): every uint8 stage of the CLIP processor and its float pixel_values
EXTRA_FULL = {("cat_landscape", "clip")}
FLOAT_SUBSET = {("cat_landscape", "clip"), ("tiny_1x1", "bt_base"), ("tiny_1x1", "bt_large"), ("tiny_1x1", "clip"), ("tiny_5x4", "bt_large")}
CROP_LIMIT = 450_000
RESIZED_LIMIT = 120_000
DECODED_LIMIT = 130_000


def processors():
    return {
        "bt_base": (BridgeTowerImageProcessor.from_dict(dict(BT_BASE_PREPROC)), {"do_center_crop": True},
                    "BridgeTowerImageProcessor, base Hub preprocessor_config (class defaults, shortest_edge 288), "
                    "called as BridgeTowerProcessor does (do_center_crop=True, do_normalize=True)"),
        "bt_large": (BridgeTowerImageProcessor.from_dict(dict(BT_LARGE_PREPROC)), {"do_center_crop": True},
                     "BridgeTowerImageProcessor, large-itm-mlm-itc Hub preprocessor_config (size 294), "
                     "called as BridgeTowerProcessor does (do_center_crop=True, do_normalize=True)"),
        "clip": (CLIPImageProcessor.from_dict(dict(CLIP_PREPROC)), {},
                 "CLIPImageProcessor with the OpenAI preprocessor_config (shortest_edge 224, crop 224x224)"),
    }


def run_one(proc, kwargs, rgb, convert=np.array):
    """Runs the processor on one image, capturing its resized and cropped arrays (through
    `convert`) on the way; returns (output, captured, error text or None)."""
    captured = {}
    orig_resize, orig_crop = proc.resize, proc.center_crop

    def resize(*a, **k):
        r = orig_resize(*a, **k)
        captured["resized"] = convert(r)
        return r

    def center_crop(*a, **k):
        r = orig_crop(*a, **k)
        captured["cropped"] = convert(r)
        return r

    proc.resize, proc.center_crop = resize, center_crop
    try:
        out = proc(rgb, return_tensors="np", **kwargs)
        err = None
    except Exception as e:  # noqa: BLE001 - the reference's failure is itself a golden
        out, err = None, "%s: %s" % (type(e).__name__, e)
    finally:
        del proc.resize, proc.center_crop
    return out, captured, err


def build(out_root, manifest, images):
    procs = processors()
    info = {}
    for im_desc in images:
        iid = im_desc["id"]
        img = Image.open(os.path.join(out_root, im_desc["file"]))
        img.load()
        rgb = img.convert("RGB")
        dec = np.asarray(rgb, dtype=np.uint8)
        arrays, meta, checks = {}, {}, {}
        rec = {"file": im_desc["file"], "opened_mode": img.mode, "decoded_rgb_shape": list(dec.shape),
               "processors": {}}
        base_inputs = {"images": [im_desc["file"]]}

        def put(name, arr, m, limit):
            m = dict(m, inputs=base_inputs, model=None)
            if arr.nbytes <= limit:
                arrays[name] = arr
                meta[name] = m
            else:
                checks[name] = (arr, m)

        put(f"{iid}/decoded_rgb", dec, {"stage": "decoded_rgb", "layout": "HWC",
                                        "note": "PIL Image.open(file).convert('RGB')"},
            DECODED_LIMIT * 2 if iid in FULL_SUBSET else DECODED_LIMIT)
        for pname, (proc, kwargs, pdesc) in procs.items():
            full = iid in FULL_SUBSET or (iid, pname) in EXTRA_FULL
            out, cap, err = run_one(proc, kwargs, rgb)
            prec = {"error": err}
            if "resized" in cap:
                r = cap["resized"]
                assert r.dtype == np.uint8, r.dtype
                put(f"{iid}/{pname}/resized", r, {"stage": "resized_u8", "layout": "HWC", "processor": pname},
                    RESIZED_LIMIT if full else 0)
                prec["resized_hw"] = list(r.shape[:2])
            if "cropped" in cap:
                c = cap["cropped"]
                assert c.dtype == np.uint8, c.dtype
                put(f"{iid}/{pname}/cropped", c, {"stage": "cropped_u8", "layout": "HWC", "processor": pname},
                    CROP_LIMIT if full else 0)
                prec["cropped_hw"] = list(c.shape[:2])
            if out is not None:
                pv = out["pixel_values"].astype(np.float32)
                prec["pixel_values_shape"] = list(pv.shape)
                put(f"{iid}/{pname}/pixel_values", pv, {"stage": "pixel_values", "layout": "NCHW", "processor": pname},
                    10**9 if (iid, pname) in FLOAT_SUBSET else 0)
                if "pixel_mask" in out:
                    put(f"{iid}/{pname}/pixel_mask", out["pixel_mask"].astype(np.int64),
                        {"stage": "pixel_mask", "layout": "NHW", "processor": pname},
                        10**9 if (iid, pname) in FLOAT_SUBSET else 0)
            rec["processors"][pname] = prec
        manifest.add_file(f"preprocess/{iid}.safetensors", arrays, meta, compress=True)
        for name, (arr, m) in checks.items():
            manifest.add_checksum(name, arr, m)
        info[iid] = rec

    # Batch through the *bare* BridgeTower image processor (no do_center_crop argument): in 4.x `preprocess`
    # never reads the do_center_crop default, so no crop happens and images are padded to the batch max with a
    # pixel_mask. BridgeTowerProcessor never does this, but users who call the image processor directly do.
    bare = BridgeTowerImageProcessor.from_dict(dict(BT_BASE_PREPROC))
    files = ["images/cat_landscape.jpg", "images/motorcycle_portrait.jpg"]
    rgbs = [Image.open(os.path.join(out_root, f)).convert("RGB") for f in files]
    out = bare(rgbs, return_tensors="np")
    note = "bare BridgeTowerImageProcessor() called without do_center_crop: no crop, pad to batch max (after normalize)"
    meta = {"inputs": {"images": files}, "model": None, "processor": "bt_base_bare", "note": note}
    manifest.add_file("preprocess/batch_bare_bt_base.safetensors",
                      {"batch_bare_bt_base/pixel_mask": out["pixel_mask"].astype(np.int64)},
                      {"batch_bare_bt_base/pixel_mask": dict(meta, stage="pixel_mask", layout="NHW")}, compress=True)
    manifest.add_checksum("batch_bare_bt_base/pixel_values", out["pixel_values"].astype(np.float32),
                          dict(meta, stage="pixel_values", layout="NCHW"))

    return {
        "processors": {k: {"description": v[2], "kwargs": v[1], "config": v[0].to_dict()} for k, v in procs.items()},
        "images": info,
    }
