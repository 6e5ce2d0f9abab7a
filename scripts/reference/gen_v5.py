"""transformers 5 goldens: tests/data/v5/ (scripts/reference/generate --transformers 5).

transformers 5 picks torchvision-based image processors when torchvision is installed (what
`pip install transformers[vision]` gives) and Pillow-based ones otherwise or with backend="pil". mmembed's
`--image-backend torchvision` reproduces the first; this records what to compare it with:

  resize/cases      torch's uint8 antialiased resize (torchvision.transforms.v2.functional.resize on a uint8
                    CHW tensor, antialias=True, BICUBIC and BILINEAR) of random images, with the inputs
  preprocess/<id>   per test image and processor (bt_base, bt_large, clip: the settings of gen_preprocess): the
                    uint8 image after the torchvision processor's resize and center crop, and its pixel_values
  goldens/<model>   the tiny checkpoints of tests/data/models (written by the 4.x generator) through v5 with each
                    backend: pixel values and the image-dependent outputs, on gen_models' inputs

manifest.json has the format of tests/data/manifest.json (files relative to tests/data/v5) plus `gaps`: the
measured differences between the two backends (pixels and outputs) and between v5's Pillow backend and the 4.x
goldens.

usage: gen_v5.py OUT_DIR DATA_DIR   (DATA_DIR: tests/data, for the images, checkpoints and 4.x goldens)
"""
import gzip
import json
import os
import sys

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import SEED, Manifest, versions  # noqa: E402
import gen_preprocess  # noqa: E402

# The processor settings and gen_models' inputs, repeated here so that this file does not import gen_models,
# which needs transformers 4.x names (gen_preprocess runs on both, and lends its run_one).
BT_BASE_PREPROC = {}
BT_LARGE_PREPROC = {"max_text_len": 50, "size": 294, "tokenizer": "roberta-large", "vocab_size": 50265}
CLIP_PREPROC = {
    "crop_size": 224, "do_center_crop": True, "do_normalize": True, "do_resize": True,
    "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
    "resample": 3, "size": 224,
}
# a crop larger than the resized image by an odd number of pixels: torchvision pads floor(diff / 2) before the
# image, transformers 4's center_crop ceil(diff / 2)
CLIP_PAD_ODD = dict(CLIP_PREPROC, crop_size={"height": 231, "width": 229})
TEXTS = ["A motorcycle sits parked across from a herd of livestock",
         "Motorcycle on platform to be worked on in garage",
         "a cat laying down stretched out near a laptop"]
IMAGES = ["images/motorcycle_left.jpg", "images/motorcycle_portrait.jpg", "images/cat_landscape.jpg"]
EXTRA_TEXT = "a bunch of cats laying on a tower."
ZERO_SHOT_PROMPTS = ["a photo of a cat", "a photo of a motorcycle", "a photo of a car"]

# storage policy as gen_preprocess: full arrays for the small images, checksums for the others
FULL_SUBSET = {"very_wide", "tiny_5x4", "tiny_7x300", "tiny_600x7", "gray16"}
EXTRA_FULL = {("cat_landscape", "clip")}


def check_versions():
    import transformers
    if int(transformers.__version__.split(".")[0]) < 5:
        sys.exit("gen_v5.py needs transformers 5 (scripts/reference/generate --transformers 5)")
    import torchvision  # noqa: F401 - the backend under test


# ---------------------------------------------------------------------------------------------------------------
# resize cases

def resize_cases(man):
    from torchvision.transforms.v2 import functional as tvF

    rng = np.random.default_rng(SEED + 50)
    sizes = []
    for _ in range(48):
        sizes.append(tuple(int(v) for v in rng.integers(1, 65, 2)) + tuple(int(v) for v in rng.integers(1, 81, 2)))
    # shapes the processors meet: strong downscaling, one axis kept, thin images
    sizes += [(300, 451, 224, 336), (460, 300, 343, 224), (150, 1200, 64, 512), (5, 4, 64, 51),
              (300, 7, 9600 // 40, 5), (97, 128, 97, 64), (128, 97, 64, 97), (2, 200, 32, 31)]
    table, inputs, outputs = [], [], []
    in_off = out_off = 0
    modes = {"bicubic": tvF.InterpolationMode.BICUBIC, "bilinear": tvF.InterpolationMode.BILINEAR}
    for n, (ih, iw, oh, ow) in enumerate(sizes):
        kind = n % 3  # 0: noise, 1: saturated 0/255 (clipping), 2: smooth gradient + noise
        if kind == 0:
            img = rng.integers(0, 256, (3, ih, iw), dtype=np.uint8)
        elif kind == 1:
            img = (rng.integers(0, 2, (3, ih, iw)) * 255).astype(np.uint8)
        else:
            yy, xx = np.meshgrid(np.linspace(0, 1, ih), np.linspace(0, 1, iw), indexing="ij")
            base = 255 * (0.5 + 0.5 * np.sin(6 * xx + 4 * yy))
            img = np.clip(base[None] + rng.normal(0, 8, (3, ih, iw)), 0, 255).astype(np.uint8)
        for mode_id, (mname, mode) in enumerate(modes.items()):
            out = tvF.resize(torch.from_numpy(img), [oh, ow], interpolation=mode, antialias=True).numpy()
            assert out.dtype == np.uint8 and out.shape == (3, oh, ow)
            table.append([ih, iw, oh, ow, 3 if mname == "bicubic" else 2, in_off, out_off])
            outputs.append(np.ascontiguousarray(out.transpose(1, 2, 0)).reshape(-1))
            out_off += out.size
        inputs.append(np.ascontiguousarray(img.transpose(1, 2, 0)).reshape(-1))
        in_off += img.size
        # both modes read the same input: the second row points at it too
        table[-1][5] = table[-2][5]
    doc = ("rows [in_h, in_w, out_h, out_w, resample (PIL constant: 3 BICUBIC, 2 BILINEAR), input offset, output "
           "offset]; images HWC uint8 flattened into resize/inputs and resize/outputs. Output = "
           "torchvision.transforms.v2.functional.resize(uint8 CHW tensor, [out_h, out_w], mode, antialias=True) on "
           "the CPU (torch %s, CPU capability %s)" % (torch.__version__, torch.backends.cpu.get_cpu_capability()))
    meta = {"stage": "resize_torchvision", "model": None, "inputs": {"generator": "gen_v5.resize_cases"}, "doc": doc}
    man.add_file("resize/cases.safetensors", {
        "resize/table": np.asarray(table, dtype=np.int64),
        "resize/inputs": np.concatenate(inputs),
        "resize/outputs": np.concatenate(outputs),
    }, {k: dict(meta) for k in ("resize/table", "resize/inputs", "resize/outputs")}, compress=True)
    return len(table)


# ---------------------------------------------------------------------------------------------------------------
# preprocessing

def processors(backend):
    from transformers import BridgeTowerImageProcessor, CLIPImageProcessor
    from transformers.models.bridgetower.image_processing_pil_bridgetower import BridgeTowerImageProcessorPil
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    bt = BridgeTowerImageProcessor if backend == "torchvision" else BridgeTowerImageProcessorPil
    clip = CLIPImageProcessor if backend == "torchvision" else CLIPImageProcessorPil
    # bt_large: the Hub file has no crop_size; 4.x crops to `size` (294). v5 would take its class default
    # ({"shortest_edge": 288}), so crop_size is given as 4.x read it (see gaps.bridgetower_crop_size).
    return {
        "bt_base": bt.from_dict(dict(BT_BASE_PREPROC)),
        "bt_large": bt.from_dict(dict(BT_LARGE_PREPROC, crop_size={"shortest_edge": 294})),
        "clip": clip.from_dict(dict(CLIP_PREPROC)),
        "clip_pad_odd": clip.from_dict(dict(CLIP_PAD_ODD)),
    }


def chw_to_hwc(t):
    a = t.numpy() if torch.is_tensor(t) else np.asarray(t)
    if a.ndim == 4:
        assert a.shape[0] == 1
        a = a[0]
    if a.shape[0] == 3 and a.shape[-1] != 3:
        a = a.transpose(1, 2, 0)
    return np.ascontiguousarray(a)


def run_one(proc, rgb, kwargs):
    """gen_preprocess.run_one with the captured arrays as HWC numpy (torchvision gives CHW)."""
    return gen_preprocess.run_one(proc, kwargs, rgb, convert=chw_to_hwc)


def preprocess(man, data_dir):
    main = json.load(open(os.path.join(data_dir, "manifest.json")))
    tv, pil = processors("torchvision"), processors("pil")
    info, stats, transparency_images = {}, {}, []
    for im in main["images"]:
        iid = im["id"]
        rgb = Image.open(os.path.join(data_dir, im["file"])).convert("RGB")
        # Pillow keeps a palette image's transparent colour in info["transparency"] through convert("RGB"), and
        # transformers 5's convert_to_rgb (CLIP: do_convert_rgb) then paints that colour white (4.x did not look at
        # it). mmembed does not reproduce that; the goldens are taken without it, and the images it concerns
        # are listed in gaps.transparency_composited_by_v5.
        if rgb.info.pop("transparency", None) is not None:
            transparency_images.append(iid)
        arrays, meta, checks = {}, {}, {}
        rec = {}
        for pname in tv:
            kwargs = {"do_center_crop": True, "do_normalize": True} if pname.startswith("bt") else {}
            out, cap, err = run_one(tv[pname], rgb, kwargs)
            pout, pcap, perr = run_one(pil[pname], rgb, kwargs)
            rec[pname] = {"error": err, "pil_error": perr}
            full = iid in FULL_SUBSET or (iid, pname) in EXTRA_FULL
            base = {"inputs": {"images": [im["file"]]}, "model": None, "processor": pname, "backend": "torchvision"}
            for stage, key in (("resized_u8", "resized"), ("cropped_u8", "cropped")):
                if key not in cap:
                    continue
                arr = cap[key]
                assert arr.dtype == np.uint8, arr.dtype
                name = f"{iid}/{pname}/{key}"
                m = dict(base, stage=stage, layout="HWC")
                if full and arr.nbytes <= 450_000:
                    arrays[name], meta[name] = arr, m
                else:
                    checks[name] = (arr, m)
                rec[pname][key + "_hw"] = list(arr.shape[:2])
                if key in pcap and pcap[key].shape == arr.shape:
                    d = np.abs(arr.astype(np.int16) - pcap[key].astype(np.int16))
                    s = stats.setdefault((pname, key), [0, 0, 0, 0.0, None])
                    s[0] += int((d > 0).sum())
                    s[1] += d.size
                    s[2] = max(s[2], int(d.max()))
                    if (d > 0).mean() > s[3]:
                        s[3], s[4] = float((d > 0).mean()), iid
            if out is not None:
                pv = out["pixel_values"].astype(np.float32)
                name = f"{iid}/{pname}/pixel_values"
                m = dict(base, stage="pixel_values", layout="NCHW")
                if (iid, pname) in EXTRA_FULL or iid in {"tiny_5x4"}:
                    arrays[name], meta[name] = pv, m
                else:
                    checks[name] = (pv, m)
        if arrays:
            man.add_file(f"preprocess/{iid}.safetensors", arrays, meta, compress=True)
        for name, (arr, m) in checks.items():
            man.add_checksum(name, arr, m)
        info[iid] = rec
    gaps = {f"{p}/{k}": {"values_differing": s[0], "values": s[1], "fraction": s[0] / s[1], "max_levels": s[2],
                         "largest_fraction_of_one_image": s[3], "that_image": s[4]}
            for (p, k), s in sorted(stats.items())}
    return info, gaps, transparency_images


# ---------------------------------------------------------------------------------------------------------------
# model outputs

def load_main_goldens(data_dir, name):
    from safetensors.numpy import load as st_load
    return st_load(gzip.open(os.path.join(data_dir, "goldens", name + ".safetensors.gz")).read())


def image_processor_for(model_dir, backend):
    """The checkpoint's preprocessor_config.json as transformers 4.x reads it: `"crop_size": null` (what 4.x's
    save_pretrained writes for BridgeTower) means "crop to size"; v5 refuses that file, so it is given here."""
    from transformers import BridgeTowerImageProcessor, CLIPImageProcessor
    from transformers.models.bridgetower.image_processing_pil_bridgetower import BridgeTowerImageProcessorPil
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    cfg = json.load(open(os.path.join(model_dir, "preprocessor_config.json")))
    kind = cfg.pop("image_processor_type")
    cfg.pop("processor_class", None)
    if kind.startswith("BridgeTower"):
        if cfg.get("crop_size") is None:
            cfg["crop_size"] = dict(cfg["size"])
        cls = BridgeTowerImageProcessor if backend == "torchvision" else BridgeTowerImageProcessorPil
    else:
        cls = CLIPImageProcessor if backend == "torchvision" else CLIPImageProcessorPil
    return cls(**cfg)


def crop_size_null_behaviour(model_dir, image_path):
    """What v5 does with a 4.x BridgeTower preprocessor_config.json ("crop_size": null): it loads, and the
    BridgeTowerProcessor call (do_center_crop=True) fails, with either backend."""
    from transformers import AutoImageProcessor
    res = {}
    img = Image.open(image_path).convert("RGB")
    for backend in ("torchvision", "pil"):
        try:
            p = AutoImageProcessor.from_pretrained(model_dir, backend=backend)
            p(img, do_center_crop=True, do_normalize=True, return_tensors="np")
            res[backend] = {"error": None}
        except Exception as e:  # noqa: BLE001
            res[backend] = {"error": "%s: %s" % (type(e).__name__, str(e).splitlines()[0][:300])}
    return res


def model_goldens(man, data_dir):
    from transformers import (AutoTokenizer, BridgeTowerForContrastiveLearning, BridgeTowerForImageAndTextRetrieval,
                              CLIPModel)

    gaps = {}
    pil_images = [Image.open(os.path.join(data_dir, f)).convert("RGB") for f in IMAGES]
    for name in ["bridgetower-base-tiny", "bridgetower-large-tiny", "clip-tiny-quickgelu", "clip-tiny-gelu"]:
        d = os.path.join(data_dir, "models", name)
        tok = AutoTokenizer.from_pretrained(d)
        ref4 = load_main_goldens(data_dir, name)
        arrays, meta = {}, {}
        outs = {}
        bt = name.startswith("bridgetower")
        texts = TEXTS if bt else TEXTS + [EXTRA_TEXT]
        inputs = {"texts": texts, "images": IMAGES, "model_dir": "models/" + name}
        for backend in ("torchvision", "pil"):
            proc = image_processor_for(d, backend)
            enc = dict(tok(texts, padding=True, return_tensors="pt"))
            # the token ids are those of the 4.x goldens (transformers 5 changed no token)
            assert np.array_equal(enc["input_ids"].numpy(), ref4[f"{name}/batch/input_ids"]), name
            kwargs = {"do_center_crop": True, "do_normalize": True} if bt else {}
            enc.update(proc(pil_images, return_tensors="pt", **kwargs))
            res = {"pixel_values": enc["pixel_values"].numpy().astype(np.float32)}
            with torch.no_grad():
                if bt:
                    res["pixel_mask"] = enc["pixel_mask"].numpy().astype(np.int64)
                    itm = BridgeTowerForImageAndTextRetrieval.from_pretrained(d).eval()
                    res["itm_logits"] = itm(**enc).logits.numpy()
                    if name == "bridgetower-large-tiny":
                        itc = BridgeTowerForContrastiveLearning.from_pretrained(d).eval()
                        o = itc(**enc)
                        res["text_embeds"] = o.text_embeds.numpy()
                        res["image_embeds"] = o.image_embeds.numpy()
                        res["cross_embeds"] = o.cross_embeds.numpy()
                else:
                    model = CLIPModel.from_pretrained(d).eval()
                    o = model(**enc)
                    res["image_embeds"] = o.image_embeds.numpy()
                    res["logits_per_image"] = o.logits_per_image.numpy()
                    zs_logits, zs_probs = [], []
                    for img in pil_images:
                        e = dict(tok(ZERO_SHOT_PROMPTS, padding=True, return_tensors="pt"))
                        e.update(proc([img], return_tensors="pt"))
                        lo = model(**e).logits_per_image
                        zs_logits.append(lo[0].numpy())
                        zs_probs.append(lo.softmax(dim=1)[0].numpy())
                    res["zero_shot_logits"] = np.stack(zs_logits)
                    res["zero_shot_probs"] = np.stack(zs_probs)
            outs[backend] = res
            for k, v in res.items():
                key = f"{backend}/{name}/batch/{k}"
                arrays[key] = v.astype(np.int64) if k == "pixel_mask" else v.astype(np.float32)
                meta[key] = {"stage": k, "model": "models/" + name, "backend": backend,
                             "inputs": dict(inputs, zero_shot_prompts=ZERO_SHOT_PROMPTS) if "zero_shot" in k
                             else inputs,
                             "layout": "NCHW" if k == "pixel_values" else ("NHW" if k == "pixel_mask" else None)}
        man.add_file(f"goldens/{name}.safetensors", arrays, meta, compress=True)
        g = {}
        for k in outs["torchvision"]:
            if k == "pixel_mask":
                continue
            a, b = outs["torchvision"][k], outs["pil"][k]
            g[k] = {"max_abs_torchvision_vs_pil": float(np.abs(a - b).max())}
        # v5's Pillow backend against the 4.x goldens of the same call
        ref_names = {"pixel_values": "batch/pixel_values", "itm_logits": "batch/itm/logits",
                     "text_embeds": "batch/itc/text_embeds", "image_embeds": "batch/itc/image_embeds",
                     "cross_embeds": "batch/itc/cross_embeds"}
        if not bt:
            ref_names.update({"image_embeds": "batch/image_embeds", "logits_per_image": "batch/logits_per_image"})
        for k, r in ref_names.items():
            key = f"{name}/{r}"
            if k in outs["pil"] and key in ref4:
                g.setdefault(k, {})["max_abs_v5_pil_vs_4x"] = float(np.abs(outs["pil"][k] - ref4[key]).max())
        if not bt:
            zs = load_main_goldens(data_dir, name)
            zl = zs.get(f"zero_shot/{name}/logits")
            if zl is not None:
                g["zero_shot_logits"]["max_abs_v5_pil_vs_4x"] = float(np.abs(outs["pil"]["zero_shot_logits"] - zl).max())
        gaps[name] = g
    return gaps


def build(out, data_dir):
    check_versions()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    import transformers
    transformers.logging.set_verbosity_error()
    man = Manifest(out)
    v = versions()
    import torchvision
    v["torchvision"] = torchvision.__version__
    v["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    header = {"format": "mmembed-reference-manifest", "format_version": 1,
              "regenerate_with": "scripts/reference/generate --transformers 5", "versions": v}
    n_cases = resize_cases(man)
    info, pixel_gaps, transparency_images = preprocess(man, data_dir)
    output_gaps = model_goldens(man, data_dir)
    man.extra["resize_cases"] = n_cases
    man.extra["preprocess"] = {"images": info, "settings": {
        "bt_base": BT_BASE_PREPROC, "bt_large": dict(BT_LARGE_PREPROC, crop_size={"shortest_edge": 294}),
        "clip": CLIP_PREPROC, "clip_pad_odd": CLIP_PAD_ODD},
        "note": "bt_base/bt_large called as BridgeTowerProcessor calls them (do_center_crop=True); bt_large's "
                "crop_size is given as 4.x reads the Hub file (crop to size)"}
    man.extra["gaps"] = {
        "pixels_torchvision_vs_pil": pixel_gaps,
        "transparency_composited_by_v5": transparency_images,
        "outputs": output_gaps,
        "bridgetower_crop_size_null": crop_size_null_behaviour(
            os.path.join(data_dir, "models", "bridgetower-large-tiny"), os.path.join(data_dir, IMAGES[2])),
    }
    man.write("manifest.json", header)


if __name__ == "__main__":
    build(os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2]))
