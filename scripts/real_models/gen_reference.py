#!/usr/bin/env python3
"""Reference embeddings of the real models (scripts/real_models/fetch.py) for tests/real/.

    .venv-realmodels/bin/python scripts/real_models/gen_reference.py [--cache-dir DIR]

Needs sentence-transformers 3.0.1 with transformers 4.44.2: scripts/real_models/requirements.txt
says how to make the venv. The model is the snapshot that scripts/real_models/fetch.py installed
into the Hugging Face cache (DIR: default $HF_HUB_CACHE, else $HF_HOME/hub, else
~/.cache/huggingface/hub; refs/main of sentence-transformers/all-MiniLM-L6-v2); run fetch.py
first. Where its files came from is read from $MMEMBED_REAL_MODELS/<model>.SOURCE.json (default
~/.cache/mmembed/real-models), which fetch.py writes.

Writes, per model, into tests/data/real/<model>/:
  embeddings.npy   float32 [N, dim]: SentenceTransformer(folder).encode(texts), one row per line
                   of tests/data/real/texts.txt, as the model's modules.json says (mean pooling,
                   Normalize), on CPU in float32.
  meta.json        versions, the package and sha256 the folder came from, the token count of every
                   text (special tokens included) and max_seq_length, the largest difference to a
                   second, independent computation (transformers AutoModel + mean pooling over
                   the attention mask + L2 normalisation, written out here), and the paraphrase /
                   unrelated cosine summary from tests/data/real/pairs.tsv.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "real"
sys.path.insert(0, str(Path(__file__).resolve().parent))
import fetch  # noqa: E402  (the cache rules and the model list)


def read_texts() -> list[str]:
    with open(DATA / "texts.txt", encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def read_pairs() -> dict[str, list[tuple[int, int]]]:
    pairs: dict[str, list[tuple[int, int]]] = {}
    with open(DATA / "pairs.tsv", encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            kind, a, b = line.split("\t")
            pairs.setdefault(kind, []).append((int(a), int(b)))
    return pairs


def manual_mean_pooling(folder: Path, texts: list[str], max_len: int) -> np.ndarray:
    """The sentence-transformers pipeline written out with transformers alone."""
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModel.from_pretrained(str(folder)).eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(texts), 16):
            enc = tok(texts[i:i + 16], padding=True, truncation=True, max_length=max_len,
                      return_tensors="pt")
            hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out.append(torch.nn.functional.normalize(pooled, p=2, dim=1).numpy())
    return np.concatenate(out).astype(np.float32)


def minilm(cache_dir: Path, texts: list[str], pairs) -> None:
    import sentence_transformers
    import transformers
    from sentence_transformers import SentenceTransformer

    name = "all-MiniLM-L6-v2"
    repo_id = fetch.MODELS[name]["repo_id"]
    folder = fetch.cached_snapshot(cache_dir, repo_id)
    if folder is None or not (folder / "model.safetensors").is_file():
        sys.exit(f"{repo_id} is not in the Hugging Face cache {cache_dir}; "
                 "run scripts/real_models/fetch.py first")
    st = SentenceTransformer(str(folder), device="cpu")
    emb = st.encode(texts, batch_size=32, convert_to_numpy=True, normalize_embeddings=False,
                    show_progress_bar=False).astype(np.float32)
    max_len = int(st.max_seq_length)
    manual = manual_mean_pooling(folder, texts, max_len)
    cos_manual = np.sum(emb * manual, axis=1) / (
        np.linalg.norm(emb, axis=1) * np.linalg.norm(manual, axis=1))

    counts = [len(ids) for ids in st.tokenizer(texts, truncation=False)["input_ids"]]
    sims = emb @ emb.T
    para = [float(sims[a, b]) for a, b in pairs["paraphrase"]]
    unrel = [float(sims[a, b]) for a, b in pairs["unrelated"]]

    out = DATA / name
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "embeddings.npy", emb)
    record = fetch.default_dest() / f"{name}.SOURCE.json"
    source = json.loads(record.read_text()) if record.is_file() else {}
    meta = {
        "model": name,
        "generator": "scripts/real_models/gen_reference.py",
        "reference": "sentence_transformers.SentenceTransformer(folder).encode(texts, batch_size=32), CPU, float32",
        "versions": {"sentence_transformers": sentence_transformers.__version__,
                     "transformers": transformers.__version__, "torch": torch.__version__,
                     "numpy": np.__version__},
        "package": source.get("package"),
        "package_sha256": source.get("package_sha256"),
        "model_safetensors_sha256": source.get("files", {}).get("model.safetensors", {}).get("sha256"),
        "rows": int(emb.shape[0]), "dim": int(emb.shape[1]),
        "max_seq_length": max_len,
        "token_counts": counts,
        "texts_over_max_seq_length": [i for i, c in enumerate(counts) if c > max_len],
        "cross_check": {
            "what": "transformers AutoModel + mean pooling over attention_mask + L2 normalisation",
            "max_abs_diff": float(np.max(np.abs(emb - manual))),
            "min_cosine": float(np.min(cos_manual)),
        },
        "pairs": {
            "paraphrase_min": min(para), "paraphrase_mean": float(np.mean(para)),
            "unrelated_max": max(unrel), "unrelated_mean": float(np.mean(unrel)),
            "anchor_violations": sum(1 for p, u in zip(para, unrel) if not p > u),
        },
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(json.dumps({k: meta[k] for k in ("rows", "dim", "texts_over_max_seq_length",
                                           "cross_check", "pairs")}, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", type=Path, default=fetch.default_cache_dir(),
                        help="the Hugging Face cache fetch.py installed into")
    args = parser.parse_args()
    torch.set_num_threads(2)
    texts = read_texts()
    pairs = read_pairs()
    minilm(args.cache_dir.expanduser(), texts, pairs)


if __name__ == "__main__":
    main()
