"""Tiny random checkpoints (saved as the Hub publishes real ones) and stage-by-stage golden activations.

Checkpoints: tests/data/models/<name>/ with config.json, preprocessor_config.json, tokenizer files,
model.safetensors and pytorch_model.bin (torch.save zip of the same state dict).
Goldens: tests/data/goldens/<name>.safetensors(.gz) with one entry per array in the manifest.
"""
import json
import os
import shutil
import tempfile

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file as st_save_file
from transformers import (BertConfig, BertModel, BertTokenizerFast, BridgeTowerConfig, BridgeTowerForContrastiveLearning,
                          BridgeTowerForImageAndTextRetrieval, BridgeTowerForMaskedLM, BridgeTowerImageProcessor,
                          BridgeTowerModel, BridgeTowerProcessor, CLIPConfig, CLIPImageProcessor, CLIPModel,
                          CLIPProcessor, CLIPTokenizerFast, RobertaTokenizerFast)

import corpus
import sources
from sources import bytes_to_unicode
from common import SEED, dump_json, tokenizer_files, transformers_major, write_json

TEXTS = list(corpus.LESSON)  # ex1 motorcycle, ex2 motorcycle, ex3 cat
IMAGES = ["images/motorcycle_left.jpg", "images/motorcycle_portrait.jpg", "images/cat_landscape.jpg"]
EXTRA_TEXTS = ["a bunch of cats laying on a tower.", "two dogs in a car"]
ZERO_SHOT_LABELS = ["a cat", "a motorcycle", "a car"]
ZERO_SHOT_TEMPLATE = "a photo of {}"


# ----------------------------------------------------------------------------------------------------------------
# tiny tokenizers (real tokenizer types, truncated real merge lists)

def tiny_roberta_tokenizer(src, d, n_merges=150):
    p = sources.paths(src)
    merges = [l for l in open(p[("gpt2", "vocab.bpe")], encoding="utf-8").read().split("\n")[1:] if l][:n_merges]
    vocab = ["<s>", "<pad>", "</s>", "<unk>"] + list(bytes_to_unicode().values())
    vocab += ["".join(m.split()) for m in merges]
    vocab.append("<mask>")
    os.makedirs(d, exist_ok=True)
    json.dump({t: i for i, t in enumerate(vocab)}, open(os.path.join(d, "vocab.json"), "w", encoding="utf-8"),
              ensure_ascii=False)
    open(os.path.join(d, "merges.txt"), "w", encoding="utf-8").write("#version: 0.2\n" + "\n".join(merges) + "\n")
    return RobertaTokenizerFast(**tokenizer_files(os.path.join(d, "vocab.json"), os.path.join(d, "merges.txt")),
                                model_max_length=512)


def tiny_clip_tokenizer(src, d, n_merges=150, extra_pad=False):
    vocab, merges = sources.clip_vocab_and_merges(sources.paths(src)[("clip", "bpe_simple_vocab_16e6.txt.gz")])
    merges = merges[:n_merges]
    toks = list(bytes_to_unicode().values())
    toks = toks + [t + "</w>" for t in toks] + ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    os.makedirs(d, exist_ok=True)
    json.dump({t: i for i, t in enumerate(toks)}, open(os.path.join(d, "vocab.json"), "w", encoding="utf-8"),
              ensure_ascii=False)
    open(os.path.join(d, "merges.txt"), "w", encoding="utf-8").write(
        "#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")
    kw = {"pad_token": "<|pad|>"} if extra_pad else {}
    return CLIPTokenizerFast(**tokenizer_files(os.path.join(d, "vocab.json"), os.path.join(d, "merges.txt")),
                             model_max_length=77, **kw)


def tiny_bert_tokenizer(src, d):
    lines = open(sources.paths(src)[("minilm", "vocab.txt")], encoding="utf-8").read().split("\n")
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = [t for t in lines if len(t) == 1 and ord(t) < 0x500]
    subchars = [t for t in lines if len(t) == 3 and t.startswith("##") and ord(t[2]) < 0x500]
    words = [t for t in lines[1996:2500] if t and not t.startswith("[")]
    seen, vocab = set(), []
    for t in specials + chars + subchars + words:
        if t not in seen:
            seen.add(t)
            vocab.append(t)
    os.makedirs(d, exist_ok=True)
    open(os.path.join(d, "vocab.txt"), "w", encoding="utf-8").write("\n".join(vocab) + "\n")
    return BertTokenizerFast(**tokenizer_files(os.path.join(d, "vocab.txt")), do_lower_case=True, model_max_length=512)


# ----------------------------------------------------------------------------------------------------------------

def perturb(model, seed):
    """Move every bias and LayerNorm/embedding-norm parameter away from its init value (1 or 0) so that a wrong
    parameter binding changes the outputs."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            low = name.lower()
            if name.endswith("bias") or "norm" in low or "ln_" in low:
                p.add_(torch.randn(p.shape, generator=g) * 0.1)
            elif name.endswith("logit_scale"):
                p.add_(0.25)


def save_checkpoint(model_for_config, state_dict, d):
    """config.json via save_pretrained; weights written as transformers 4.44 save_pretrained writes a single shard:
    safetensors.torch.save_file(sd, metadata={'format': 'pt'}) and torch.save(sd) (a plain dict) for the .bin."""
    tmp = tempfile.mkdtemp()
    try:
        model_for_config.save_pretrained(tmp, safe_serialization=True)
        shutil.copy(os.path.join(tmp, "config.json"), os.path.join(d, "config.json"))
    finally:
        shutil.rmtree(tmp)
    sd = {k: v.detach().contiguous().clone() for k, v in state_dict.items()}
    st_save_file(sd, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
    torch.save(sd, os.path.join(d, "pytorch_model.bin"))


CARD_WHAT = ["A tiny BridgeTower in the layout of the BridgeTower checkpoints",
             "A tiny CLIPModel", "A tiny sentence-transformers BERT (MiniLM layout)"]


def write_random_card(d, name, what):
    """README.md (the model card) saying that the weights are random: mmembed's demo reads the tag."""
    text = ("---\ntags:\n- mmembed-random-weights\n---\n\n"
            f"# {name}: random test weights\n\n"
            f"{what} with random weights (seeded, written by scripts/reference/gen_models.py). "
            "It exists so that mmembed's outputs can be compared with the reference's stage by stage "
            "(tests/data/goldens); its embeddings carry no meaning.\n")
    with open(os.path.join(d, "README.md"), "w", encoding="utf-8") as f:
        f.write(text)


def normalize_json_files(d):
    """Re-serialise the JSON files written by save_pretrained with sorted keys (stable across runs)."""
    for root, _, files in os.walk(d):
        for fn in files:
            if fn.endswith(".json") and fn != "tokenizer.json" and fn != "vocab.json":
                p = os.path.join(root, fn)
                obj = json.load(open(p, encoding="utf-8"))
                open(p, "wb").write(dump_json(obj))


class Recorder:
    """Forward hooks on named modules; records each call's output (first element of tuples) in call order."""

    def __init__(self, model, names):
        self.out = {}
        self.handles = []
        mods = dict(model.named_modules())
        for n in names:
            self.handles.append(mods[n].register_forward_hook(self._hook(n)))

    def _hook(self, n):
        def f(_m, _i, o):
            if isinstance(o, (tuple, list)):
                o = o[0]
            self.out.setdefault(n, []).append(o.detach().clone())
        return f

    def close(self):
        for h in self.handles:
            h.remove()


def f32(t):
    return t.detach().to(torch.float32).cpu().numpy()


def i64(t):
    return np.asarray(t.detach().cpu().numpy() if torch.is_tensor(t) else t, dtype=np.int64)


# ----------------------------------------------------------------------------------------------------------------
# BridgeTower

def bt_config(kind, vocab_size):
    common = dict(
        share_cross_modal_transformer_layers=True, share_link_tower_layers=False, link_tower_type="add",
        init_layernorm_from_vision_encoder=False, tie_word_embeddings=False, layer_norm_eps=1e-5, hidden_act="gelu",
    )
    text = dict(vocab_size=vocab_size, hidden_size=32, num_attention_heads=2, intermediate_size=64,
                max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=0,
                eos_token_id=2, hidden_act="gelu", position_embedding_type="absolute")
    vis = dict(hidden_size=64, num_channels=3, layer_norm_eps=1e-5, share_layernorm=True, remove_last_layer=False,
               stop_gradient=False)
    if kind == "base":
        # like BridgeTower/bridgetower-base(-itm-mlm): no ITC heads; patch 16 -> here 8; image 288 -> 64
        text.update(num_hidden_layers=3)
        vis.update(num_hidden_layers=3, patch_size=8, image_size=64)
        cfg = BridgeTowerConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, text_config=text,
                                vision_config=vis, **common)
    elif kind == "shared":
        # base with share_link_tower_layers=True: the reference builds ONE link tower per side
        # (cross_modal_{text,image}_link_tower.LayerNorm.*, no layer index) and its forward indexes it, so it
        # runs only with one cross-modal layer (no link tower is called then). That is the config here.
        common.update(share_link_tower_layers=True)
        text.update(num_hidden_layers=3)
        vis.update(num_hidden_layers=3, patch_size=8, image_size=64)
        cfg = BridgeTowerConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, text_config=text,
                                vision_config=vis, **common)
    else:
        # like BridgeTower/bridgetower-large-itm-mlm-itc: ITC heads (contrastive_hidden_size), image 294 -> 70
        # (resize floors to a multiple of 32, crop pads 3 px like the real one), patch 14 (grid 5).
        # HF's ITC image path adds the [H] token-type row to the [Hv] ln_post output, so ITC needs Hv == H == Ht.
        text.update(num_hidden_layers=2, hidden_size=64, max_position_embeddings=130)
        vis.update(num_hidden_layers=2, patch_size=14, image_size=70)
        cfg = BridgeTowerConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, text_config=text,
                                vision_config=vis, contrastive_hidden_size=16, logit_scale_init_value=2.6592, **common)
    return cfg


def bt_hook_names(model_prefix, cfg):
    p = model_prefix
    nt = cfg.text_config.num_hidden_layers
    nv = cfg.vision_config.num_hidden_layers
    nx = cfg.num_hidden_layers
    names = {f"{p}text_model.embeddings": "text/embeddings"}
    names.update({f"{p}text_model.encoder.layer.{i}": f"text/layer_{i}" for i in range(nt)})
    names[f"{p}vision_model.visual.embeddings"] = "vision/embeddings"
    names[f"{p}vision_model.visual.ln_pre"] = "vision/ln_pre"
    names.update({f"{p}vision_model.visual.transformer.resblocks.{i}": f"vision/layer_{i}" for i in range(nv)})
    names[f"{p}vision_model.visual.ln_post"] = "vision/ln_post"
    names[f"{p}cross_modal_text_transform"] = "bridge/text_transform"
    names[f"{p}cross_modal_image_transform"] = "bridge/image_transform"
    names[f"{p}cross_modal_text_layernorm"] = "cross/text_input_0"
    names[f"{p}cross_modal_image_layernorm"] = "cross/image_input_0"
    for j in range(nx - 1):
        names[f"{p}cross_modal_text_link_tower.{j}"] = f"cross/text_link_{j}"
        names[f"{p}cross_modal_image_link_tower.{j}"] = f"cross/image_link_{j}"
    for k in range(nx):
        names[f"{p}cross_modal_text_layers.{k}"] = f"cross/text_layer_{k}"
        names[f"{p}cross_modal_image_layers.{k}"] = f"cross/image_layer_{k}"
    names[f"{p}cross_modal_text_pooler"] = "pool/text"
    names[f"{p}cross_modal_image_pooler"] = "pool/image"
    return names


STAGE_DOC = {
    "text/embeddings": "RoBERTa embeddings output (word+type+position, LayerNorm) [B,Nt,Ht]",
    "text/layer_": "output of RoBERTa encoder layer i (0-based) [B,Nt,Ht]",
    "vision/embeddings": "patch conv + class embedding + position embedding, before ln_pre [B,Ni,Hv]",
    "vision/ln_pre": "after ln_pre [B,Ni,Hv]",
    "vision/layer_": "output of ViT residual block i (un-normalised residual stream), stored batch-first [B,Ni,Hv]",
    "vision/ln_post": "ln_post outputs, one per call in call order (call k = bridge k) [B,Ni,Hv]",
    "bridge/text_transform": "cross_modal_text_transform outputs per call (call k = bridge k), before + token type [B,Nt,H]",
    "bridge/image_transform": "cross_modal_image_transform outputs per call (call k = bridge k), before + token type [B,Ni,H]",
    "cross/text_input_0": "cross_modal_text_layernorm output = input of text cross layer 0",
    "cross/image_input_0": "cross_modal_image_layernorm output = input of image cross layer 0",
    "cross/text_link_": "text link tower j output = input of text cross layer j+1",
    "cross/image_link_": "image link tower j output = input of image cross layer j+1",
    "cross/text_layer_": "text cross-modal layer k output [B,Nt,H]",
    "cross/image_layer_": "image cross-modal layer k output [B,Ni,H]",
    "pool/text": "cross_modal_text_pooler output tanh(W x_t[0] + b) [B,H]",
    "pool/image": "cross_modal_image_pooler output [B,H]",
}


def doc_for(stage):
    for k, v in STAGE_DOC.items():
        if stage == k or (k.endswith("_") and stage.startswith(k)):
            return v
    return None


def run_bt(kind, name, src, out_root, manifest, tmp):
    torch.manual_seed(SEED + {"base": 1, "large": 2, "shared": 3}[kind])
    tok = tiny_roberta_tokenizer(src, os.path.join(tmp, name + "_tok"))
    cfg = bt_config(kind, len(tok))
    # the union of all heads: trunk + ITM + MLM (+ ITC for large)
    itm = BridgeTowerForImageAndTextRetrieval(cfg).eval()
    perturb(itm, SEED + 11)
    mlm = BridgeTowerForMaskedLM(cfg).eval()
    perturb(mlm, SEED + 12)
    mlm.bridgetower.load_state_dict(itm.bridgetower.state_dict())
    union = dict(itm.state_dict())
    union.update({k: v for k, v in mlm.state_dict().items() if not k.startswith("bridgetower.")})
    heads = ["itm", "mlm"]
    cfg_model = itm
    if kind == "large":
        itc = BridgeTowerForContrastiveLearning(cfg).eval()
        perturb(itc, SEED + 13)
        itc.bridgetower.load_state_dict(itm.bridgetower.state_dict())
        union.update({k: v for k, v in itc.state_dict().items() if not k.startswith("bridgetower.")})
        heads.append("itc")
        cfg_model = itc
    d = os.path.join(out_root, "models", name)
    os.makedirs(d, exist_ok=True)
    size = cfg.vision_config.image_size
    # transformers 4 saves "crop_size": null here and crops to `size`; 5 would save its class default (288) and
    # refuses null, so under 5 the crop is given as 4.x applies it.
    crop = {} if transformers_major() < 5 else {"crop_size": {"shortest_edge": size}}
    improc = BridgeTowerImageProcessor(size={"shortest_edge": size}, **crop)
    proc = BridgeTowerProcessor(image_processor=improc, tokenizer=tok)
    proc.save_pretrained(d)
    save_checkpoint(cfg_model, union, d)
    normalize_json_files(d)
    write_random_card(d, name, CARD_WHAT[0])
    runs = {"batch": (TEXTS, IMAGES), "single0": (TEXTS[:1], IMAGES[:1])}
    rel = bt_goldens(name, d, kind == "large", runs, lambda f: os.path.join(out_root, f), manifest)
    return {"dir": "models/" + name, "kind": kind, "heads_in_checkpoint": heads, "goldens": rel,
            "weight_keys": len(union), "note": "checkpoint holds the union of the head classes' state dicts; "
            "config.json architectures comes from %s" % type(cfg_model).__name__}


def bt_goldens(name, d, has_itc, runs, image_path, manifest):
    """Stage-by-stage goldens of the BridgeTower checkpoint in folder d (models/<name> under the data folder) for
    `runs` ({group: (texts, image paths relative to the data folder)}); image_path(rel) gives the file to read."""
    cfg = BridgeTowerConfig.from_pretrained(d)
    # reload from disk exactly as a user would (each head class ignores the other heads' keys)
    model = BridgeTowerModel.from_pretrained(d).eval()
    itm_l = BridgeTowerForImageAndTextRetrieval.from_pretrained(d).eval()
    mlm_l = BridgeTowerForMaskedLM.from_pretrained(d).eval()
    itc_l = BridgeTowerForContrastiveLearning.from_pretrained(d).eval() if has_itc else None
    proc = BridgeTowerProcessor.from_pretrained(d)

    arrays, meta = {}, {}
    model_rel = "models/" + name

    def put(key, arr, stage, inputs, **kw):
        arrays[key] = arr
        kw.setdefault("doc", doc_for(stage))
        meta[key] = dict(stage=stage, model=model_rel, inputs=inputs, **kw)

    for run, (texts, imgs) in runs.items():
        pil = [Image.open(image_path(f)).convert("RGB") for f in imgs]
        enc = proc(images=pil, text=texts, padding=True, return_tensors="pt")
        inputs = {"texts": texts, "images": imgs, "pairs": "text i with image i",
                  "call": "BridgeTowerProcessor(images=[PIL RGB], text=texts, padding=True)"}
        pre = f"{name}/{run}/"
        put(pre + "input_ids", i64(enc["input_ids"]), "input_ids", inputs)
        put(pre + "attention_mask", i64(enc["attention_mask"]), "attention_mask", inputs)
        put(pre + "pixel_values", f32(enc["pixel_values"]), "pixel_values", inputs, layout="NCHW")
        put(pre + "pixel_mask", i64(enc["pixel_mask"]), "pixel_mask", inputs, layout="NHW")
        names = bt_hook_names("", cfg) if run == "batch" else {}
        rec = Recorder(model, names)
        with torch.no_grad():
            out = model(**enc, output_hidden_states=True)
        rec.close()
        B = enc["input_ids"].shape[0]
        for mod, stage in names.items():
            outs = rec.out.get(mod, [])
            for c, t in enumerate(outs):
                if stage.startswith("vision/layer_") and t.shape[0] != B:
                    t = t.permute(1, 0, 2)  # HF runs the ViT blocks sequence-first; store batch-first
                key = pre + stage + (f"/call_{c}" if len(outs) > 1 else "")
                put(key, f32(t), stage, inputs, call_index=c, hooked_module=mod)
        put(pre + "model/text_features", f32(out.text_features), "text_features", inputs)
        put(pre + "model/image_features", f32(out.image_features), "image_features", inputs)
        put(pre + "model/pooler_output", f32(out.pooler_output), "pooler_output", inputs)
        with torch.no_grad():
            lo = itm_l(**enc).logits
            put(pre + "itm/logits", f32(lo), "itm_logits", inputs,
                doc="BridgeTowerForImageAndTextRetrieval logits [B,2] (index 1 = match)")
            if run == "batch":
                ml = mlm_l(**enc).logits
                put(pre + "mlm/logits", f32(ml), "mlm_logits", inputs, doc="BridgeTowerForMaskedLM logits [B,Nt,V]")
            if itc_l is not None:
                o = itc_l(**enc)
                put(pre + "itc/text_embeds", f32(o.text_embeds), "text_embeds", inputs)
                put(pre + "itc/image_embeds", f32(o.image_embeds), "image_embeds", inputs)
                put(pre + "itc/cross_embeds", f32(o.cross_embeds), "cross_embeds", inputs)
                put(pre + "itc/logits", f32(o.logits), "itc_logits", inputs,
                    doc="stack(text_embeds, image_embeds, cross_embeds) along dim -2 [B,3,C]")
    if itc_l is not None:
        put(f"{name}/logit_scale", f32(itc_l.logit_scale.reshape(1)), "logit_scale", {}, doc="stored logit_scale [1]")
    return manifest.add_file(f"goldens/{name}.safetensors", arrays, meta, compress=True)


# ----------------------------------------------------------------------------------------------------------------
# CLIP

def run_clip(variant, name, src, out_root, manifest, tmp):
    torch.manual_seed(SEED + (3 if variant == "quick_gelu" else 4))
    legacy = variant == "quick_gelu"
    tok = tiny_clip_tokenizer(src, os.path.join(tmp, name + "_tok"), extra_pad=not legacy)
    vsize = len(tok)
    bos, eos = tok.convert_tokens_to_ids("<|startoftext|>"), tok.convert_tokens_to_ids("<|endoftext|>")
    text = dict(vocab_size=vsize, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                max_position_embeddings=77, hidden_act=variant, layer_norm_eps=1e-5, projection_dim=24,
                bos_token_id=0 if legacy else bos, eos_token_id=2 if legacy else eos,
                pad_token_id=1 if legacy else tok.pad_token_id)
    vis = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=32,
               patch_size=8, hidden_act=variant, layer_norm_eps=1e-5, projection_dim=24)
    cfg = CLIPConfig(text_config=text, vision_config=vis, projection_dim=24, logit_scale_init_value=2.6592)
    model = CLIPModel(cfg).eval()
    perturb(model, SEED + 21)
    d = os.path.join(out_root, "models", name)
    os.makedirs(d, exist_ok=True)
    improc = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=improc, tokenizer=tok).save_pretrained(d)
    save_checkpoint(model, model.state_dict(), d)
    normalize_json_files(d)
    write_random_card(d, name, CARD_WHAT[1])
    runs = {"batch": (TEXTS + EXTRA_TEXTS[:1], IMAGES), "single0": (TEXTS[:1], IMAGES[:1])}
    zero_shot = (ZERO_SHOT_LABELS, ZERO_SHOT_TEMPLATE, IMAGES)
    rel = clip_goldens(name, d, runs, zero_shot, lambda f: os.path.join(out_root, f), manifest)
    return {"dir": "models/" + name, "hidden_act": variant, "eos_token_id": cfg.text_config.eos_token_id,
            "pad_token_id": tok.pad_token_id, "vocab_size": vsize,
            "eos_rule": "argmax(input_ids) (legacy, eos_token_id == 2)" if legacy
            else "first position where input_ids == eos_token_id; pad <|pad|> has id > eos so argmax would be wrong",
            "goldens": rel}


def clip_goldens(name, d, runs, zero_shot, image_path, manifest):
    """Stage-by-stage goldens of the CLIP checkpoint in folder d (models/<name> under the data folder) for `runs`
    ({group: (texts, image paths relative to the data folder)}) and zero-shot goldens for zero_shot = (labels,
    template, image paths); image_path(rel) gives the file to read."""
    model = CLIPModel.from_pretrained(d).eval()
    cfg = model.config
    legacy = cfg.text_config.eos_token_id == 2
    proc = CLIPProcessor.from_pretrained(d)

    arrays, meta = {}, {}
    model_rel = "models/" + name

    def put(key, arr, stage, inputs, **kw):
        arrays[key] = arr
        meta[key] = dict(stage=stage, model=model_rel, inputs=inputs, **kw)

    nt, nv = cfg.text_config.num_hidden_layers, cfg.vision_config.num_hidden_layers
    names = {"text_model.embeddings": "text/embeddings", "text_model.final_layer_norm": "text/final_layer_norm",
             "vision_model.embeddings": "vision/embeddings", "vision_model.pre_layrnorm": "vision/pre_layrnorm",
             "vision_model.post_layernorm": "vision/post_layernorm"}
    names.update({f"text_model.encoder.layers.{i}": f"text/layer_{i}" for i in range(nt)})
    names.update({f"vision_model.encoder.layers.{i}": f"vision/layer_{i}" for i in range(nv)})
    for run, (texts, imgs) in runs.items():
        pil = [Image.open(image_path(f)).convert("RGB") for f in imgs]
        enc = proc(text=texts, images=pil, padding=True, return_tensors="pt")
        inputs = {"texts": texts, "images": imgs, "call": "CLIPProcessor(text=texts, images=[PIL RGB], padding=True)"}
        pre = f"{name}/{run}/"
        put(pre + "input_ids", i64(enc["input_ids"]), "input_ids", inputs)
        put(pre + "attention_mask", i64(enc["attention_mask"]), "attention_mask", inputs)
        put(pre + "pixel_values", f32(enc["pixel_values"]), "pixel_values", inputs, layout="NCHW")
        rec = Recorder(model, names if run == "batch" else {})
        with torch.no_grad():
            out = model(**enc, output_hidden_states=True)
            tf = model.get_text_features(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
            imf = model.get_image_features(pixel_values=enc["pixel_values"])
            # transformers 5 returns the tower's output with the projected features as pooler_output
            tf = tf if torch.is_tensor(tf) else tf.pooler_output
            imf = imf if torch.is_tensor(imf) else imf.pooler_output
        rec.close()
        for mod, stage in (names if run == "batch" else {}).items():
            t = rec.out[mod][0]  # first call = the CLIPModel.forward call
            put(pre + stage, f32(t), stage, inputs, hooked_module=mod)
        put(pre + "text_pooler_output", f32(out.text_model_output.pooler_output), "text_pooled", inputs,
            doc="final_layer_norm output at the EOS position chosen by the pooling rule [B,Dt]")
        put(pre + "vision_pooler_output", f32(out.vision_model_output.pooler_output), "vision_pooled", inputs,
            doc="post_layernorm(last_hidden_state[:,0]) [B,Dv]")
        put(pre + "text_features", f32(tf), "text_features", inputs, doc="get_text_features: projected, NOT normalised")
        put(pre + "image_features", f32(imf), "image_features", inputs, doc="get_image_features: projected, NOT normalised")
        put(pre + "text_embeds", f32(out.text_embeds), "text_embeds", inputs, doc="CLIPModel output: L2-normalised")
        put(pre + "image_embeds", f32(out.image_embeds), "image_embeds", inputs, doc="CLIPModel output: L2-normalised")
        put(pre + "logits_per_image", f32(out.logits_per_image), "logits_per_image", inputs,
            doc="exp(logit_scale) * image_embeds @ text_embeds.T [B_img,B_text]")
        put(pre + "logits_per_text", f32(out.logits_per_text), "logits_per_text", inputs)
        ids = enc["input_ids"]
        if legacy:
            pos = ids.to(torch.int).argmax(dim=-1)
        else:
            pos = (ids.to(torch.int) == cfg.text_config.eos_token_id).int().argmax(dim=-1)
        put(pre + "eos_pool_index", i64(pos), "eos_pool_index", inputs,
            doc="index pooled per row by the EOS rule in force for this config")
    # zero-shot classification (mmembed classify): one CLIPProcessor/CLIPModel call per image, as a user does it
    zs_labels, zs_template, zs_images = zero_shot
    zs_inputs = {"images": zs_images, "labels": zs_labels, "template": zs_template,
                 "prompts": [zs_template.format(lab) for lab in zs_labels],
                 "call": "CLIPModel(**CLIPProcessor(text=prompts, images=[PIL RGB], padding=True))"
                         ".logits_per_image.softmax(dim=1), one call per image"}
    zs_logits, zs_probs = [], []
    for f in zs_images:
        enc = proc(text=zs_inputs["prompts"], images=[Image.open(image_path(f)).convert("RGB")],
                   padding=True, return_tensors="pt")
        with torch.no_grad():
            lo = model(**enc).logits_per_image
        zs_logits.append(f32(lo[0]))
        zs_probs.append(f32(lo.softmax(dim=1)[0]))
    put(f"zero_shot/{name}/logits", np.stack(zs_logits), "logits_per_image", zs_inputs,
        doc="logits_per_image of each image (rows, in images order) against the prompts (columns)")
    put(f"zero_shot/{name}/probs", np.stack(zs_probs), "zero_shot_probs", zs_inputs,
        doc="softmax over the prompts of each image's logits_per_image")
    return manifest.add_file(f"goldens/{name}.safetensors", arrays, meta, compress=True)


# ----------------------------------------------------------------------------------------------------------------
# BERT sentence-transformers (mean pooling + Normalize)

def run_bert(name, src, out_root, manifest, tmp):
    torch.manual_seed(SEED + 5)
    tok = tiny_bert_tokenizer(src, os.path.join(tmp, name + "_tok"))
    cfg = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=512, type_vocab_size=2, layer_norm_eps=1e-12,
                     pad_token_id=0, hidden_act="gelu", position_embedding_type="absolute")
    model = BertModel(cfg).eval()
    perturb(model, SEED + 31)
    d = os.path.join(out_root, "models", name)
    os.makedirs(d, exist_ok=True)
    tok.save_pretrained(d)
    save_checkpoint(model, model.state_dict(), d)
    max_seq_length = 128
    # sentence-transformers files, written in the format SentenceTransformer.save() produces
    write_json(os.path.join(d, "modules.json"), [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ])
    write_json(os.path.join(d, "sentence_bert_config.json"), {"max_seq_length": max_seq_length, "do_lower_case": False})
    write_json(os.path.join(d, "1_Pooling", "config.json"), {
        "word_embedding_dimension": 32, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False,
        "pooling_mode_weightedmean_tokens": False, "pooling_mode_lasttoken": False, "include_prompt": True})
    write_json(os.path.join(d, "config_sentence_transformers.json"),
               {"__version__": {"sentence_transformers": "2.0.0", "transformers": "4.44.2", "pytorch": "1.13.1"}})
    normalize_json_files(d)
    write_random_card(d, name, CARD_WHAT[2])
    model = BertModel.from_pretrained(d).eval()
    tok = BertTokenizerFast.from_pretrained(d)

    arrays, meta = {}, {}
    model_rel = "models/" + name
    texts_all = TEXTS + EXTRA_TEXTS + ["", "caf\u00e9 na\u00efve \u65e5\u672c " * 40]
    for run, texts in {"batch": texts_all, "single0": TEXTS[:1]}.items():
        enc = tok(texts, padding=True, truncation=True, max_length=max_seq_length, return_tensors="pt")
        inputs = {"texts": texts, "call": f"tokenizer(texts, padding=True, truncation=True, max_length={max_seq_length})"}
        pre = f"{name}/{run}/"

        def put(key, arr, stage, **kw):
            arrays[pre + key] = arr
            meta[pre + key] = dict(stage=stage, model=model_rel, inputs=inputs, **kw)

        put("input_ids", i64(enc["input_ids"]), "input_ids")
        put("attention_mask", i64(enc["attention_mask"]), "attention_mask")
        put("token_type_ids", i64(enc["token_type_ids"]), "token_type_ids")
        with torch.no_grad():
            out = model(**enc, output_hidden_states=True)
        for i, h in enumerate(out.hidden_states[:-1] if run == "batch" else []):
            put("hidden_states_%d" % i, f32(h), "hidden_states",
                doc="hidden_states[0] = embeddings output, [i] = encoder layer i-1 output; the last one is last_hidden_state")
        put("last_hidden_state", f32(out.last_hidden_state), "last_hidden_state")
        put("pooler_output", f32(out.pooler_output), "bert_pooler_output",
            doc="BertPooler tanh(dense(h[:,0])) - NOT used by sentence-transformers mean pooling")
        # sentence-transformers Pooling(mean) + Normalize, same math as the library
        m = enc["attention_mask"].unsqueeze(-1).expand(out.last_hidden_state.size()).to(out.last_hidden_state.dtype)
        summed = torch.sum(out.last_hidden_state * m, 1)
        counts = torch.clamp(m.sum(1), min=1e-9)
        mean = summed / counts
        put("mean_pooled", f32(mean), "mean_pooled", doc="sum(h*mask)/clamp(sum(mask),1e-9)")
        put("sentence_embedding", f32(torch.nn.functional.normalize(mean, p=2, dim=1)), "sentence_embedding",
            doc="F.normalize(mean_pooled, p=2, dim=1) (sentence-transformers Normalize)")
        # the other sentence-transformers Pooling modes, same math as the library (Pooling.forward)
        h = out.last_hidden_state
        put("cls_pooled", f32(h[:, 0]), "cls_pooled", doc="pooling_mode_cls_token: h[:,0]")
        masked = h.clone()
        masked[m == 0] = -1e9
        put("max_pooled", f32(torch.max(masked, 1)[0]), "max_pooled",
            doc="pooling_mode_max_tokens: max over tokens with padded tokens set to -1e9")
        put("mean_sqrt_len_pooled", f32(summed / torch.sqrt(counts)), "mean_sqrt_len_pooled",
            doc="pooling_mode_mean_sqrt_len_tokens: sum(h*mask)/sqrt(clamp(sum(mask),1e-9))")
    rel = manifest.add_file(f"goldens/{name}.safetensors", arrays, meta, compress=True)
    return {"dir": model_rel, "goldens": rel, "max_seq_length": max_seq_length,
            "note": "2_Normalize has no files (sentence-transformers writes no config for it), so no folder exists"}


# ----------------------------------------------------------------------------------------------------------------
# The trained toy models (scripts/reference/train_toy.py writes them and the held-out scenes; here only their goldens)

TOY_ODD_TEXT = "A Cat & DOG, \u00fcn\u00ef \U0001F431!"  # 26 tokens for the toy BPE (40 fit)
TOY_PHOTO = "images/cat_landscape.jpg"


def toy_runs(toys_root):
    """Inputs of the toy goldens: the first four held-out scenes and the first two-object one with their captions,
    and a photo (another size) with a text outside the captions' language."""
    with open(os.path.join(toys_root, "toy-scenes", "manifest.tsv"), encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t") for line in f][1:]
    picked = rows[:4] + [next(r for r in rows if " left of " in r[3])]
    texts = [r[2] for r in picked] + [TOY_ODD_TEXT]
    images = ["toy-scenes/" + r[1] for r in picked] + [TOY_PHOTO]
    return {"batch": (texts, images), "single0": (texts[:1], images[:1])}, images


def toy_goldens(out_root, manifest, toys_root):
    import toy_scenes as ts

    info = {}
    runs, images = toy_runs(toys_root)

    def image_path(rel):
        return os.path.join(out_root if rel.startswith("images/") else toys_root, rel)

    d = os.path.join(toys_root, "models", "toy-bridgetower")
    if os.path.isdir(d):
        info["toy-bridgetower"] = {"dir": "models/toy-bridgetower", "trained_by": "scripts/reference/train_toy.py",
                                   "goldens": bt_goldens("toy-bridgetower", d, True, runs, image_path, manifest)}
    d = os.path.join(toys_root, "models", "toy-clip")
    if os.path.isdir(d):
        labels = [ts._articles("a " + c) for c in ts.CLASSES]
        info["toy-clip"] = {"dir": "models/toy-clip", "trained_by": "scripts/reference/train_toy.py",
                            "goldens": clip_goldens("toy-clip", d, runs, (labels, "a photo of {}", images),
                                                    image_path, manifest)}
    return info


def build(out_root, manifest, src, toys_root=None):
    tmp = tempfile.mkdtemp(prefix="mmembed-models-")
    try:
        info = {}
        info["bridgetower-base-tiny"] = run_bt("base", "bridgetower-base-tiny", src, out_root, manifest, tmp)
        info["bridgetower-large-tiny"] = run_bt("large", "bridgetower-large-tiny", src, out_root, manifest, tmp)
        info["bridgetower-shared-link-tiny"] = run_bt("shared", "bridgetower-shared-link-tiny", src, out_root,
                                                      manifest, tmp)
        info["clip-tiny-quickgelu"] = run_clip("quick_gelu", "clip-tiny-quickgelu", src, out_root, manifest, tmp)
        info["clip-tiny-gelu"] = run_clip("gelu", "clip-tiny-gelu", src, out_root, manifest, tmp)
        info["minilm-tiny-st"] = run_bert("minilm-tiny-st", src, out_root, manifest, tmp)
        if toys_root:
            info.update(toy_goldens(out_root, manifest, toys_root))
    finally:
        shutil.rmtree(tmp)
    return info
