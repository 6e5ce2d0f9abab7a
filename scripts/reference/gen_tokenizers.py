"""Tokenizer goldens with real vocabularies over a deterministic corpus.

Ragged results are stored flat: `<prefix>/ids` (I64, all sequences concatenated) + `<prefix>/offsets` (I64 [N+1]);
sequence n is ids[offsets[n]:offsets[n+1]]. Unpadded attention masks are all ones and are not stored.
"""
import json
import os
import shutil
import tempfile

import numpy as np
from transformers import (BertTokenizer, BertTokenizerFast, CLIPTokenizer, CLIPTokenizerFast, RobertaTokenizer, RobertaTokenizerFast)

import corpus
import sources
from common import dump_json, gzip_bytes, tokenizer_files, transformers_major, write_bytes


def slow(make):
    """The slow (Python) tokenizer, or None under transformers 5, which has none (its BertTokenizer etc. are
    the fast ones)."""
    return make() if transformers_major() < 5 else None


def make_tokenizers(src, tmp):
    """Returns name -> (fast, slow or None, max_length, description)."""
    p = sources.paths(src)
    enc, bpe = p[("gpt2", "encoder.json")], p[("gpt2", "vocab.bpe")]
    toks = {}
    rob_kw = dict(model_max_length=512)
    toks["roberta_gpt2vocab"] = (
        RobertaTokenizerFast(**tokenizer_files(enc, bpe), **rob_kw),
        slow(lambda: RobertaTokenizer(vocab_file=enc, merges_file=bpe, **rob_kw)),
        512,
        "RoBERTa byte-level BPE pipeline (RobertaTokenizerFast, add_prefix_space=False, <s> A </s>) over the GPT-2 "
        "vocabulary/merges (roberta-base's own vocab.json was not available from a registry package). Token strings "
        "and merges are the same as roberta-base's but ids are GPT-2's; the RoBERTa special tokens are not in the "
        "GPT-2 vocab and are appended as added tokens (ids >= 50257, see tokenizer.json).",
    )
    vocab, merges = sources.clip_vocab_and_merges(p[("clip", "bpe_simple_vocab_16e6.txt.gz")])
    cdir = os.path.join(tmp, "clip_src")
    os.makedirs(cdir, exist_ok=True)
    with open(os.path.join(cdir, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(cdir, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")
    clip_kw = dict(model_max_length=77)
    toks["clip"] = (
        CLIPTokenizerFast(**tokenizer_files(os.path.join(cdir, "vocab.json"), os.path.join(cdir, "merges.txt")),
                          **clip_kw),
        slow(lambda: CLIPTokenizer(vocab_file=os.path.join(cdir, "vocab.json"),
                                   merges_file=os.path.join(cdir, "merges.txt"), **clip_kw)),
        77,
        "OpenAI CLIP BPE (CLIPTokenizerFast converted from vocab.json/merges.txt built from openai-clip's "
        "bpe_simple_vocab_16e6.txt.gz, laid out as the openai/clip-vit-* Hub vocab.json). pad = <|endoftext|>. "
        "The slow CLIPTokenizer ran WITHOUT ftfy installed (BasicTokenizer fallback).",
    )
    vt = p[("minilm", "vocab.txt")]
    toks["bert_uncased"] = (
        BertTokenizerFast(**tokenizer_files(vt), do_lower_case=True, model_max_length=512),
        slow(lambda: BertTokenizer(vocab_file=vt, do_lower_case=True, model_max_length=512)),
        512,
        "BERT uncased WordPiece (BertTokenizerFast, do_lower_case=True, tokenize_chinese_chars=True, strip_accents "
        "unset -> follows lowercase) with all-MiniLM-L6-v2's vocab.txt; [CLS] A [SEP].",
    )
    return toks


def flat(seqs):
    offsets = np.zeros(len(seqs) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(s) for s in seqs])
    ids = np.fromiter((i for s in seqs for i in s), dtype=np.int64, count=int(offsets[-1]))
    return ids, offsets


def build(out_root, manifest, src):
    texts, batch_idx = corpus.build()
    lines = b"".join(json.dumps({"i": i, "text": t}, ensure_ascii=False).encode("utf-8") + b"\n"
                     for i, t in enumerate(texts))
    write_bytes(os.path.join(out_root, "tokenizers", "corpus.jsonl.gz"), gzip_bytes(lines))
    info = {"corpus": {"file": "tokenizers/corpus.jsonl.gz", "count": len(texts),
                       "format": "gzip JSON lines {\"i\": index, \"text\": string}",
                       "batch_indices": batch_idx}, "tokenizers": {}}
    corpus_ref = {"corpus": "tokenizers/corpus.jsonl.gz"}
    tmp = tempfile.mkdtemp(prefix="mmembed-tok-")
    try:
        toks = make_tokenizers(src, tmp)
        for name, (fast, slow, maxlen, desc) in toks.items():
            # save the tokenizer files as save_pretrained writes them (large ones gzipped)
            sdir = os.path.join(tmp, "save_" + name)
            fast.save_pretrained(sdir)
            files = {}
            for fn in sorted(os.listdir(sdir)):
                data = open(os.path.join(sdir, fn), "rb").read()
                if fn in ("tokenizer_config.json", "special_tokens_map.json"):
                    data = json.loads(data)
                    data = dump_json(data)
                    rel = f"tokenizers/{name}/{fn}"
                elif fn == "tokenizer.json":
                    rel = f"tokenizers/{name}/{fn}.gz"
                    data = gzip_bytes(data)
                else:
                    continue  # vocab.json / merges.txt / vocab.txt are contained in tokenizer.json
                write_bytes(os.path.join(out_root, rel), data)
                files[fn] = rel
            arrays, meta = {}, {}
            rec = {"description": desc, "class_fast": type(fast).__name__,
                   "class_slow": type(slow).__name__ if slow is not None else None, "files": files,
                   "model_max_length": maxlen, "pad_token_id": fast.pad_token_id, "variants": {}}

            def add(variant, seqs, m):
                ids, offs = flat(seqs)
                pre = f"tok/{name}/{variant}"
                arrays[pre + "/ids"] = ids
                arrays[pre + "/offsets"] = offs
                for k in ("ids", "offsets"):
                    meta[pre + "/" + k] = dict(m, stage="token_ids" if k == "ids" else "token_offsets",
                                               tokenizer=name, variant=variant, inputs=corpus_ref, model=None)

            plain = fast(texts, add_special_tokens=True)["input_ids"]
            add("plain", plain, {"call": "fast(text, add_special_tokens=True) - no truncation, no padding"})
            rec["variants"]["plain"] = "fast, add_special_tokens=True, no truncation"
            if maxlen:
                tr = fast(texts, add_special_tokens=True, truncation=True, max_length=maxlen)["input_ids"]
                add("trunc", tr, {"call": f"fast(text, truncation=True, max_length={maxlen})"})
                rec["variants"]["trunc"] = f"fast, truncation=True, max_length={maxlen}"
                rec["truncated_count"] = sum(1 for a, b in zip(plain, tr) if len(a) != len(b))
            if slow is not None:
                sp = [slow(t, add_special_tokens=True)["input_ids"] for t in texts]
                diff = [i for i, (a, b) in enumerate(zip(plain, sp)) if a != b]
                rec["slow_vs_fast_differences"] = len(diff)
                rec["slow_vs_fast_first_differences"] = diff[:50]
                if diff:
                    add("slow_plain", sp, {"call": f"{type(slow).__name__}(text, add_special_tokens=True)"})
                    rec["variants"]["slow_plain"] = "slow Python tokenizer, add_special_tokens=True, no truncation"
            if maxlen:
                bt = [texts[i] for i in batch_idx]
                enc = fast(bt, padding=True, truncation=True, max_length=maxlen, return_tensors="np")
                bm = {"inputs": dict(corpus_ref, corpus_indices=batch_idx), "tokenizer": name, "model": None,
                      "call": f"fast(batch, padding=True, truncation=True, max_length={maxlen})"}
                arrays[f"tok/{name}/batch/input_ids"] = enc["input_ids"].astype(np.int64)
                arrays[f"tok/{name}/batch/attention_mask"] = enc["attention_mask"].astype(np.int64)
                meta[f"tok/{name}/batch/input_ids"] = dict(bm, stage="input_ids", variant="batch")
                meta[f"tok/{name}/batch/attention_mask"] = dict(bm, stage="attention_mask", variant="batch")
                if name == "clip":
                    enc = fast(bt, padding="max_length", truncation=True, max_length=77, return_tensors="np")
                    bm = dict(bm, call="fast(batch, padding='max_length', truncation=True, max_length=77)")
                    arrays["tok/clip/batch_max_length/input_ids"] = enc["input_ids"].astype(np.int64)
                    arrays["tok/clip/batch_max_length/attention_mask"] = enc["attention_mask"].astype(np.int64)
                    meta["tok/clip/batch_max_length/input_ids"] = dict(bm, stage="input_ids", variant="batch_max_length")
                    meta["tok/clip/batch_max_length/attention_mask"] = dict(bm, stage="attention_mask",
                                                                           variant="batch_max_length")
            manifest.add_file(f"tokenizers/{name}/goldens.safetensors", arrays, meta, compress=True)
            info["tokenizers"][name] = rec
        # the package's own all-MiniLM-L6-v2 tokenizer.json must agree with the one converted from vocab.txt
        from tokenizers import Tokenizer

        pkg = Tokenizer.from_file(sources.paths(src)[("minilm", "tokenizer.json")])
        info["tokenizers"]["bert_uncased"]["package_tokenizer_json_settings"] = {
            "truncation": pkg.truncation, "padding": pkg.padding}
        pkg.no_truncation()
        pkg.no_padding()
        ours = toks["bert_uncased"][0]
        mism = [i for i, t in enumerate(texts) if pkg.encode(t).ids != ours(t)["input_ids"]]
        info["tokenizers"]["bert_uncased"]["package_tokenizer_json_differences"] = len(mism)
        info["tokenizers"]["bert_uncased"]["package_tokenizer_json_first_differences"] = mism[:20]
    finally:
        shutil.rmtree(tmp)
    return info
