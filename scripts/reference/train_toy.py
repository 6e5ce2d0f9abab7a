#!/usr/bin/env python3
"""Train the toy BridgeTower and CLIP models on synthetic scenes (issue #19).

    .venv-ref/bin/python scripts/reference/train_toy.py [--out tests/data] [--steps N]
        [--batch B] [--only bt|clip]

The reference stack (PyTorch + transformers, the versions of scripts/reference/requirements.txt)
trains two small models that have learned something, so that search, re-ranking and the demo can
be tested for meaning offline:
  - toy-bridgetower: the `bridgetower-large-itm-mlm-itc` layout (BridgeTowerForContrastiveLearning
    with the ITM head and an untrained MLM head beside it), its own byte-level BPE (RoBERTa
    format) trained on the captions, trained with the three contrastive losses of the reference
    and the image-text matching loss on hard negatives from the batch;
  - toy-clip: CLIPModel with its own CLIP-format BPE, trained contrastively.
Scenes come from toy_scenes.py (coloured shapes on textured or photo-crop backgrounds). The
held-out scenes (another seed, never seen in training) are written to OUT/toy-scenes/ with their
captions and labels, and each model's held-out numbers, computed by the reference from the saved
files, to OUT/models/<name>/eval.json: zero-shot accuracy on single-object scenes, text->image
recall@1/@5, ITM AUC (BridgeTower). mmembed's tests recompute them with mmembed alone.

Deterministic for a given torch build: seeded generators, one thread.

Recipes:
  toy-clip (committed): --only clip --steps 6000 (one stage): zero-shot 0.933, recall@1 0.945,
    recall@5 1.000.
  toy-bridgetower (committed): five stages, each continuing from the one before:
    stage 1  --only bt --steps 5000 --plain                      zero-shot 0.587, R@1 0.760,
                                                                 R@5 1.000, ITM AUC 0.833
    stage 2  --only bt --steps 2000 --lr 7e-4 --init STAGE1_DIR  0.813, 0.825, 1.000, 0.943
    stage 3  --only bt --steps 2500 --lr 7e-4 --init STAGE2_DIR  0.893, 0.910, 1.000, 0.965
    stage 4  --only bt --steps 1200 --lr 7e-4 --init STAGE3_DIR  0.893, 0.915, 1.000, 0.968
    stage 5  --only bt --steps 3000 --lr 5e-4 --init STAGE4_DIR --data-seed 20261212
                                                                 0.940, 0.935, 1.000, 0.979
  (each stage with an --out of its own; --init reads the previous stage's
  models/toy-bridgetower; 0.3-1 s a step at batch 48 on a shared 2-core machine, 9,600 s in all;
  the model card, tests/data/models/toy-bridgetower/README.md, has the details)
"""
from __future__ import annotations

import argparse
import collections
import json
import math
import os
import re
import shutil
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file as st_save_file
from transformers import (BridgeTowerConfig, BridgeTowerForContrastiveLearning,
                          BridgeTowerForImageAndTextRetrieval, BridgeTowerForMaskedLM,
                          BridgeTowerImageProcessor, BridgeTowerProcessor, CLIPConfig,
                          CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizerFast,
                          RobertaTokenizerFast)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import toy_scenes as ts  # noqa: E402

SEED = 20261207
HELD_OUT_SEED = SEED + 1000
IMAGE_SIZE = 64


# ------------------------------------------------------------------------------------------------
# Byte-pair encodings learned from the captions (our own trainer: the classic merge loop)

def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map of the 256 bytes to printable characters."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + \
        list(range(0xAE, 0xFF + 1))
    chars = keep[:]
    n = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + n)
            n += 1
    return dict(zip(keep, (chr(c) for c in chars)))


def roberta_tokenizer(captions: list[str], d: str, n_merges: int = 200) -> RobertaTokenizerFast:
    """Byte-level BPE in RoBERTa's files (vocab.json, merges.txt), learned from the captions."""
    b2u = bytes_to_unicode()
    words = collections.Counter()
    for c in captions:
        for piece in re.findall(r" ?[a-z]+| ?[0-9]+| ?[^\sa-z0-9]+|\s+", c):
            words[tuple(b2u[b] for b in piece.encode("utf-8"))] += 1
    merges = learn_merges(words, n_merges)
    vocab = ["<s>", "<pad>", "</s>", "<unk>"] + list(b2u.values())
    vocab += [a + b for a, b in merges] + ["<mask>"]
    vocab_file, merges_file = write_bpe_files(d, vocab, merges)
    return RobertaTokenizerFast(vocab_file=vocab_file, merges_file=merges_file,
                                model_max_length=40)


def clip_tokenizer(captions: list[str], d: str, n_merges: int = 200) -> CLIPTokenizerFast:
    """CLIP's BPE files (bytes, bytes + '</w>', merges, then the two specials), learned from the
    captions; words end in '</w>' as CLIP's do."""
    b2u = bytes_to_unicode()
    words = collections.Counter()
    for c in captions:
        for w in re.findall(r"[a-z]+|[0-9]|[^\sa-z0-9]+", c.lower()):
            chars = [b2u[b] for b in w.encode("utf-8")]
            chars[-1] += "</w>"
            words[tuple(chars)] += 1
    merges = learn_merges(words, n_merges)
    toks = list(b2u.values())
    toks += [t + "</w>" for t in toks] + [a + b for a, b in merges]
    toks += ["<|startoftext|>", "<|endoftext|>"]
    vocab_file, merges_file = write_bpe_files(d, toks, merges)
    return CLIPTokenizerFast(vocab_file=vocab_file, merges_file=merges_file, model_max_length=77)


def write_bpe_files(d: str, vocab: list[str], merges: list[tuple[str, str]]) -> tuple[str, str]:
    """vocab.json (token -> id in list order) and merges.txt, as both tokenizer families read
    them; returns their paths."""
    os.makedirs(d, exist_ok=True)
    vocab_file, merges_file = os.path.join(d, "vocab.json"), os.path.join(d, "merges.txt")
    with open(vocab_file, "w", encoding="utf-8") as f:
        json.dump({t: i for i, t in enumerate(vocab)}, f, ensure_ascii=False)
    with open(merges_file, "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges) + "\n")
    return vocab_file, merges_file


def learn_merges(words: collections.Counter, n_merges: int) -> list[tuple[str, str]]:
    """The classic BPE merge loop over words given as tuples of symbols (CLIP's last symbol
    carries '</w>'): the most frequent adjacent pair first, ties broken by the pair itself, so
    the list is stable."""
    vocab = dict(words)
    merges = []
    for _ in range(n_merges):
        pairs = collections.Counter()
        for w, c in vocab.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] += c
        if not pairs:
            break
        best = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        merges.append(best)
        merged = {}
        for w, c in vocab.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            merged[tuple(out)] = merged.get(tuple(out), 0) + c
        vocab = merged
    return merges


# ------------------------------------------------------------------------------------------------
# Data

def batch_of_scenes(rng, photos, n, two_object_share=0.25):
    """n scenes whose labels are all different, so that every other item of the batch is a true
    negative for the contrastive losses."""
    scenes, labels = [], set()
    while len(scenes) < n:
        s = ts.make_scene(rng, photos, two_objects=rng.random() < two_object_share)
        if s.label not in labels:
            labels.add(s.label)
            scenes.append(s)
    return scenes


def held_out_scenes(photos, per_class=5, n_pairs=50):
    rng = np.random.default_rng(HELD_OUT_SEED)
    scenes = []
    for k in range(per_class):
        for colour in ts.COLOUR_NAMES:
            for shape in ts.SHAPES:
                scenes.append(ts.make_scene(rng, photos, False, only=((colour, shape),)))
    for _ in range(n_pairs):
        scenes.append(ts.make_scene(rng, photos, True))
    return scenes


def zero_shot_prompts():
    return [ts._articles(f"a photo of a {c}") for c in ts.CLASSES]


def swapped_caption(scene):
    """For a two-object scene: the same objects with the relation reversed (a hard negative)."""
    (ca, sa), (cb, sb) = scene.shapes
    return ts._articles(f"a {cb} {sb} left of a {ca} {sa}")


# ------------------------------------------------------------------------------------------------
# Metrics (the same definitions the C++ test uses)

def recall_at(sim_text_image, text_labels, image_labels, ks=(1, 5)):
    order = np.argsort(-sim_text_image, axis=1, kind="stable")
    out = {}
    for k in ks:
        hits = [any(image_labels[j] == text_labels[i] for j in order[i, :k])
                for i in range(len(text_labels))]
        out[f"recall@{k}"] = float(np.mean(hits))
    return out


def auc(pos, neg):
    """Probability that a random positive scores above a random negative (ties count half)."""
    pos, neg = np.asarray(pos, np.float64), np.asarray(neg, np.float64)
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(pos) * len(neg)))


# ------------------------------------------------------------------------------------------------
# BridgeTower

def bt_config(vocab_size):
    text = dict(vocab_size=vocab_size, hidden_size=64, num_attention_heads=2, intermediate_size=128,
                num_hidden_layers=3, max_position_embeddings=42, type_vocab_size=1,
                layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=0, eos_token_id=2,
                hidden_act="gelu", position_embedding_type="absolute")
    vis = dict(hidden_size=64, num_channels=3, layer_norm_eps=1e-5, share_layernorm=True,
               remove_last_layer=False, stop_gradient=False, num_hidden_layers=3, patch_size=8,
               image_size=IMAGE_SIZE)
    return BridgeTowerConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                             text_config=text, vision_config=vis, contrastive_hidden_size=32,
                             logit_scale_init_value=2.6592,
                             share_cross_modal_transformer_layers=True,
                             share_link_tower_layers=False, link_tower_type="add",
                             init_layernorm_from_vision_encoder=False, tie_word_embeddings=False,
                             layer_norm_eps=1e-5, hidden_act="gelu")


def train_bt(out_dir, photos, steps, batch, log, init=None, lr=1.5e-3, plain=False,
             data_seed=SEED):
    """From scratch, or (init) continuing from a saved toy-bridgetower folder. plain: the first
    stage's losses (the reference's contrastive loss, and ITM against other labels' captions and
    images only); otherwise the text-image contrastive term is weighted once more and every
    two-object scene's caption with its relation reversed is an ITM negative too."""
    torch.manual_seed(SEED)
    if init:
        tok = RobertaTokenizerFast.from_pretrained(init)
        itc = BridgeTowerForContrastiveLearning.from_pretrained(init)
        itm = BridgeTowerForImageAndTextRetrieval.from_pretrained(init)
        mlm = BridgeTowerForMaskedLM.from_pretrained(init)
        cfg = itc.config
    else:
        tok = roberta_tokenizer(ts.caption_corpus(), out_dir)
        cfg = bt_config(len(tok))
        itc = BridgeTowerForContrastiveLearning(cfg)
        itm = BridgeTowerForImageAndTextRetrieval(cfg)
        mlm = BridgeTowerForMaskedLM(cfg)  # only for the layout: its head stays untrained
    itm.bridgetower = itc.bridgetower  # one trunk, two heads
    improc = BridgeTowerImageProcessor(size={"shortest_edge": IMAGE_SIZE})
    params = list(itc.parameters()) + list(itm.itm_score.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    sched = warmup_cosine(opt, steps)
    rng = np.random.default_rng(data_seed)  # training scenes (a later stage draws new ones)
    itc.train()
    itm.train()
    t0 = time.time()
    # The ITM head scores the trunk's pooled output; for the matched pairs that is the pooled output
    # of the contrastive pass itself (captured here), so only the negatives need a second pass.
    pooled = {}
    # (The trunk is shared, so the hook keeps the first pooled output of a step, the matched one.)
    def keep_pooled(module, args, out):
        pooled.setdefault("matched", out.pooler_output)  # (a hook that returns None changes nothing)

    hook = itc.bridgetower.register_forward_hook(keep_pooled)
    for step in range(steps):
        scenes = batch_of_scenes(rng, photos, batch)
        # The captions, then each two-object scene's caption with the relation reversed (an ITM
        # negative that only the objects' places tell apart), tokenized together (one padding).
        two = [] if plain else [k for k, s in enumerate(scenes) if len(s.shapes) == 2]
        all_enc = tok([s.caption for s in scenes] + [swapped_caption(scenes[k]) for k in two],
                      padding=True, return_tensors="pt")
        enc = argparse.Namespace(input_ids=all_enc.input_ids[:batch],
                                 attention_mask=all_enc.attention_mask[:batch])
        px = improc([s.image for s in scenes], return_tensors="pt")
        out = itc(input_ids=enc.input_ids, attention_mask=enc.attention_mask,
                  pixel_values=px.pixel_values, pixel_mask=px.pixel_mask, return_loss=True,
                  output_hidden_states=False)
        t_emb, i_emb = out.text_embeds, out.image_embeds
        # ITM: the matched pairs, and for each pair one hard negative: the first half of the
        # images with another text, the second half of the texts with another image, drawn in
        # proportion to the contrastive similarity among the scenes of another label (a caption
        # of the same label describes the image too, so it is no negative).
        with torch.no_grad():
            labels = [s.label for s in scenes]
            same = torch.tensor([[a == b for b in labels] for a in labels])
            sim = (t_emb @ i_emb.t()).float()
            w_t = F.softmax(sim.t() * 10, dim=1).masked_fill(same, 0)  # image -> texts
            w_i = F.softmax(sim * 10, dim=1).masked_fill(same, 0)  # text -> images
            gen = torch.Generator().manual_seed(int(rng.integers(0, 2**31)))
            neg_text = torch.multinomial(w_t + 1e-9, 1, generator=gen).squeeze(1)
            neg_image = torch.multinomial(w_i + 1e-9, 1, generator=gen).squeeze(1)
        h = batch // 2
        t_idx = torch.cat([neg_text[:h], torch.arange(h, batch)])
        i_idx = torch.cat([torch.arange(h), neg_image[h:]])
        # ... and the reversed relations with their own images.
        t_idx = torch.cat([t_idx, torch.arange(batch, batch + len(two))])
        i_idx = torch.cat([i_idx, torch.tensor(two, dtype=torch.long)])
        neg_logits = itm(input_ids=all_enc.input_ids[t_idx],
                         attention_mask=all_enc.attention_mask[t_idx],
                         pixel_values=px.pixel_values[i_idx],
                         pixel_mask=px.pixel_mask[i_idx]).logits
        logits = torch.cat([itm.itm_score(pooled.pop("matched")), neg_logits])
        target = torch.cat([torch.ones(batch), torch.zeros(len(t_idx))]).long()
        itm_loss = F.cross_entropy(logits, target)
        # The reference's contrastive loss averages text-image, text-cross and image-cross; the
        # text-image term (what text_embeds and image_embeds are for: zero-shot, retrieval) is
        # weighted once more here.
        scale = itc.logit_scale.exp()
        lti = (t_emb @ i_emb.t()) * scale
        arange = torch.arange(batch)
        ti_loss = (F.cross_entropy(lti, arange) + F.cross_entropy(lti.t(), arange)) / 2
        loss = out.loss + itm_loss + (0 if plain else ti_loss)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        if step % 50 == 0 or step == steps - 1:
            log(f"bt step {step}/{steps} itc {out.loss.item():.3f} ti {ti_loss.item():.3f} "
                f"itm {itm_loss.item():.3f} "
                f"({time.time() - t0:.0f} s)")
    hook.remove()
    itc.eval()
    itm.eval()
    union = dict(itc.state_dict())
    union.update({k: v for k, v in itm.state_dict().items() if k.startswith("itm_score.")})
    union.update({k: v for k, v in mlm.state_dict().items() if k.startswith("mlm_score.")})
    cfg.architectures = ["BridgeTowerForContrastiveLearning"]
    save_model(itc, union, out_dir)
    tok.save_pretrained(out_dir)
    if init:  # the tokenizer files as the first stage wrote them
        for f in ("vocab.json", "merges.txt"):
            shutil.copy(os.path.join(init, f), os.path.join(out_dir, f))
    improc.save_pretrained(out_dir)
    return cfg


# ------------------------------------------------------------------------------------------------
# CLIP

def clip_config(tok):
    eot = tok.convert_tokens_to_ids("<|endoftext|>")
    bos = tok.convert_tokens_to_ids("<|startoftext|>")
    text = dict(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=2, max_position_embeddings=77, hidden_act="quick_gelu",
                bos_token_id=bos, eos_token_id=eot, pad_token_id=eot)
    vis = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=3, num_attention_heads=4,
               image_size=IMAGE_SIZE, patch_size=8, hidden_act="quick_gelu")
    return CLIPConfig(text_config=text, vision_config=vis, projection_dim=32)


def train_clip(out_dir, photos, steps, batch, log):
    tok = clip_tokenizer(ts.caption_corpus(), out_dir)
    cfg = clip_config(tok)
    torch.manual_seed(SEED + 1)
    model = CLIPModel(cfg)
    improc = CLIPImageProcessor(size={"shortest_edge": IMAGE_SIZE},
                                crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    sched = warmup_cosine(opt, steps)
    rng = np.random.default_rng(SEED + 1)
    model.train()
    t0 = time.time()
    for step in range(steps):
        scenes = batch_of_scenes(rng, photos, batch)
        enc = tok([s.caption for s in scenes], padding=True, return_tensors="pt")
        px = improc([s.image for s in scenes], return_tensors="pt")
        out = model(input_ids=enc.input_ids, attention_mask=enc.attention_mask,
                    pixel_values=px.pixel_values, return_loss=True)
        opt.zero_grad()
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 50 == 0 or step == steps - 1:
            log(f"clip step {step}/{steps} loss {out.loss.item():.3f} ({time.time() - t0:.0f} s)")
    model.eval()
    save_model(model, model.state_dict(), out_dir)
    tok.save_pretrained(out_dir)
    improc.save_pretrained(out_dir)
    return cfg


# ------------------------------------------------------------------------------------------------

def warmup_cosine(opt, steps, warmup=100):
    def f(step):
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))
    return torch.optim.lr_scheduler.LambdaLR(opt, f)


def save_model(model, state_dict, d):
    """config.json by save_pretrained; weights as transformers 4.44 writes one shard, in both
    formats (model.safetensors, and pytorch_model.bin for the loader's other path)."""
    tmp = d + ".tmp-config"
    model.save_pretrained(tmp, safe_serialization=True)
    with open(os.path.join(tmp, "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    config.pop("_name_or_path", None)  # a continued model would name the previous stage's folder
    with open(os.path.join(d, "config.json"), "w", encoding="utf-8") as f:
        f.write(json.dumps(config, indent=2, sort_keys=True) + "\n")
    shutil.rmtree(tmp)
    sd = {k: v.detach().contiguous().clone() for k, v in state_dict.items()}
    st_save_file(sd, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
    torch.save(sd, os.path.join(d, "pytorch_model.bin"))


def write_held_out(scenes, out_root):
    d = os.path.join(out_root, "toy-scenes")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    rows = ["id\timage\ttext\tlabel"]
    for i, s in enumerate(scenes):
        name = f"scene_{i:03d}.png"
        s.image.save(os.path.join(d, name), optimize=True)
        rows.append(f"s{i:03d}\t{name}\t{s.caption}\t{s.label}")
    with open(os.path.join(d, "manifest.tsv"), "w", encoding="utf-8") as f:
        f.write("\n".join(rows) + "\n")


@torch.no_grad()
def evaluate_bt(d, scenes):
    proc = BridgeTowerProcessor.from_pretrained(d)
    itc = BridgeTowerForContrastiveLearning.from_pretrained(d).eval()
    itm = BridgeTowerForImageAndTextRetrieval.from_pretrained(d).eval()
    images = [s.image for s in scenes]

    # The text and image embeddings come out of the two towers before any cross-modal layer, so
    # a forward pass with a fixed partner of the other modality gives each one alone.
    def embed_texts(texts):
        enc = proc(images=[images[0]] * len(texts), text=texts, padding=True, return_tensors="pt")
        return itc(**enc).text_embeds.numpy()

    def embed_images(imgs):
        enc = proc(images=imgs, text=["a"] * len(imgs), padding=True, return_tensors="pt")
        return itc(**enc).image_embeds.numpy()

    def itm_prob(imgs, texts):
        enc = proc(images=imgs, text=texts, padding=True, return_tensors="pt")
        return F.softmax(itm(**enc).logits, dim=-1)[:, 1].numpy()

    return metrics(scenes, embed_texts, embed_images, itm_prob)


@torch.no_grad()
def evaluate_clip(d, scenes):
    proc = CLIPProcessor.from_pretrained(d)
    model = CLIPModel.from_pretrained(d).eval()

    def embed_texts(texts):
        enc = proc.tokenizer(texts, padding=True, return_tensors="pt")
        return F.normalize(model.get_text_features(**enc), dim=-1).numpy()

    def embed_images(imgs):
        px = proc.image_processor(imgs, return_tensors="pt")
        return F.normalize(model.get_image_features(**px), dim=-1).numpy()

    return metrics(scenes, embed_texts, embed_images, None)


def metrics(scenes, embed_texts, embed_images, itm_prob):
    single = [s for s in scenes if len(s.shapes) == 1]
    img = embed_images([s.image for s in scenes])
    prompts = zero_shot_prompts()
    pe = embed_texts(prompts)
    single_idx = [i for i, s in enumerate(scenes) if len(s.shapes) == 1]
    pred = np.argmax(img[single_idx] @ pe.T, axis=1)
    truth = [ts.CLASSES.index(s.label) for s in single]
    res = {"zero_shot_accuracy": float(np.mean(pred == np.array(truth))),
           "zero_shot_classes": ts.CLASSES, "zero_shot_prompts": prompts,
           "zero_shot_predictions": [ts.CLASSES[p] for p in pred]}
    te = embed_texts([s.caption for s in scenes])
    labels = [s.label for s in scenes]
    res.update(recall_at(te @ img.T, labels, labels))
    if itm_prob is not None:
        # Positives: every scene with its caption. Negatives: each scene with the caption of the
        # next scene of another label, and each two-object scene with its relation reversed.
        neg_imgs, neg_texts, neg_pairs = [], [], []
        for i, s in enumerate(scenes):
            j = (i + 1) % len(scenes)
            while scenes[j].label == s.label:
                j = (j + 1) % len(scenes)
            neg_pairs.append([i, scenes[j].caption])
            if len(s.shapes) == 2:
                neg_pairs.append([i, swapped_caption(s)])
        for i, text in neg_pairs:
            neg_imgs.append(scenes[i].image)
            neg_texts.append(text)
        res["itm_negative_pairs"] = neg_pairs
        pos = itm_prob([s.image for s in scenes], [s.caption for s in scenes])
        neg = itm_prob(neg_imgs, neg_texts)
        res["itm_auc"] = auc(pos, neg)
        two = [k for k, s in enumerate(scenes) if len(s.shapes) == 2]
        swapped = itm_prob([scenes[k].image for k in two],
                           [swapped_caption(scenes[k]) for k in two])
        res["itm_auc_swapped_relation"] = auc(pos[two], swapped)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "../../tests/data"))
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch", type=int, default=48)
    ap.add_argument("--only", choices=["bt", "clip"])
    ap.add_argument("--init", help="bt: continue training from this toy-bridgetower folder")
    ap.add_argument("--lr", type=float, help="peak learning rate (default: bt 1.5e-3, clip 2e-3)")
    ap.add_argument("--data-seed", type=int, default=SEED,
                    help="bt: seed of the training scenes (a stage that continues another can "
                         "draw scenes it has not seen; the held-out scenes never change)")
    ap.add_argument("--plain", action="store_true",
                    help="bt: the first stage's losses (see train_bt); the committed "
                         "toy-bridgetower's recipe is in its README.md")
    args = ap.parse_args()
    torch.set_num_threads(1)
    out_root = os.path.abspath(args.out)
    photos = ts.load_photos(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                         "../../tests/data/images"))
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    scenes = held_out_scenes(photos)
    write_held_out(scenes, out_root)
    jobs = {"bt": ("toy-bridgetower", train_bt, evaluate_bt),
            "clip": ("toy-clip", train_clip, evaluate_clip)}
    for key, (name, train, evaluate) in jobs.items():
        if args.only and args.only != key:
            continue
        d = os.path.join(out_root, "models", name)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        t0 = time.time()
        if key == "bt":
            train(d, photos, args.steps, args.batch, log, init=args.init,
                  lr=args.lr or 1.5e-3, plain=args.plain, data_seed=args.data_seed)
        else:
            train(d, photos, args.steps, args.batch, log)
        seconds = time.time() - t0
        res = evaluate(d, scenes)
        res.update({"train_steps": args.steps, "train_batch": args.batch,
                    "train_seconds": round(seconds), "seed": SEED,
                    "held_out_seed": HELD_OUT_SEED, "torch": torch.__version__})
        if key == "bt":
            res.update({"data_seed": args.data_seed, "init": bool(args.init)})
        with open(os.path.join(d, "eval.json"), "w", encoding="utf-8") as f:
            json.dump(res, f, indent=1, sort_keys=True)
        log(f"{name}: " + ", ".join(f"{k} {v:.3f}" for k, v in res.items()
                                    if isinstance(v, float)))


if __name__ == "__main__":
    main()
