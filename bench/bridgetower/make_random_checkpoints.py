#!/usr/bin/env python3
"""Random-weight BridgeTower checkpoints with the real configurations, for benchmarks.

    /work/main/.venv-ref/bin/python bench/bridgetower/make_random_checkpoints.py [--out DIR]

Writes DIR/bridgetower-base/ (BridgeTowerModel, the configuration of BridgeTower/bridgetower-base:
no heads) and DIR/bridgetower-large-itm-mlm-itc/ (BridgeTowerForContrastiveLearning with the
configuration of BridgeTower/bridgetower-large-itm-mlm-itc, contrastive_hidden_size 512), each as
config.json + one model.safetensors, plus the tokenizer files of the tiny test checkpoints
(tests/data/models/bridgetower-*-tiny; the benchmarks feed token ids directly) and a
preprocessor_config.json with the real image sizes (288 / 294). DIR defaults to
$HOME/.cache/mmembed/bench (outside git: the large one is about 3.6 GB). Random weights have the
FLOPs of the trained ones; the values are the reference's own initialisation (seed 0).

With --only bridgetower-large-itm it writes DIR/bridgetower-large-itm/ instead: the large
configuration as BridgeTowerForImageAndTextRetrieval (the ITM head, no ITC heads), what
bench/index/bench_rerank.cc re-ranks with.

Configurations: /work/shared/spec/bridgetower.md section 2.1. A folder that already holds a
model.safetensors is kept unless --force is given.
"""
import argparse
import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

BASE = {
    "model_type": "bridgetower",
    "hidden_size": 768,
    "num_hidden_layers": 6,
    "num_attention_heads": 12,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-05,
    "share_cross_modal_transformer_layers": True,
    "share_link_tower_layers": False,
    "link_tower_type": "add",
    "init_layernorm_from_vision_encoder": False,
    "tie_word_embeddings": False,
    "text_config": {
        "vocab_size": 50265, "hidden_size": 768, "num_hidden_layers": 12,
        "num_attention_heads": 12, "intermediate_size": 3072, "hidden_act": "gelu",
        "max_position_embeddings": 514, "type_vocab_size": 1, "layer_norm_eps": 1e-05,
        "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2,
        "position_embedding_type": "absolute",
    },
    "vision_config": {
        "hidden_size": 768, "num_hidden_layers": 12, "num_channels": 3, "patch_size": 16,
        "image_size": 288, "layer_norm_eps": 1e-05, "share_layernorm": True,
        "remove_last_layer": False, "stop_gradient": False,
    },
}

LARGE = {
    "model_type": "bridgetower",
    "hidden_size": 1024,
    "num_hidden_layers": 6,
    "num_attention_heads": 16,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-05,
    "share_cross_modal_transformer_layers": True,
    "share_link_tower_layers": False,
    "link_tower_type": "add",
    "init_layernorm_from_vision_encoder": False,
    "tie_word_embeddings": False,
    "contrastive_hidden_size": 512,
    "logit_scale_init_value": 2.6592,
    "text_config": {
        "vocab_size": 50265, "hidden_size": 1024, "num_hidden_layers": 24,
        "num_attention_heads": 16, "intermediate_size": 4096, "hidden_act": "gelu",
        "max_position_embeddings": 514, "type_vocab_size": 1, "layer_norm_eps": 1e-05,
        "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2,
        "position_embedding_type": "absolute",
    },
    "vision_config": {
        "hidden_size": 1024, "num_hidden_layers": 24, "num_channels": 3, "patch_size": 14,
        "image_size": 294, "layer_norm_eps": 1e-05, "share_layernorm": True,
        "remove_last_layer": False, "stop_gradient": False,
    },
}

MODELS = [
    # (folder, config, HF class, tiny checkpoint whose tokenizer files are copied, image size)
    ("bridgetower-base", BASE, "BridgeTowerModel", "bridgetower-base-tiny", 288),
    ("bridgetower-large-itm-mlm-itc", LARGE, "BridgeTowerForContrastiveLearning",
     "bridgetower-large-tiny", 294),
    # The same configuration with the image-text matching head (itm_score), for re-ranking
    # (bench/index/bench_rerank.cc); made only when asked for with --only.
    ("bridgetower-large-itm", LARGE, "BridgeTowerForImageAndTextRetrieval",
     "bridgetower-large-tiny", 294),
]
ON_REQUEST = {"bridgetower-large-itm"}

TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "vocab.json", "merges.txt"]


def write_model(out_dir, folder, config, cls_name, tiny, image_size, force):
    import torch
    import transformers
    from safetensors.torch import save_file

    path = os.path.join(out_dir, folder)
    weights = os.path.join(path, "model.safetensors")
    if os.path.exists(weights) and not force:
        print(f"{path}: exists, kept (--force rewrites it)")
        return
    os.makedirs(path, exist_ok=True)
    torch.manual_seed(0)
    cfg = transformers.BridgeTowerConfig(**config)
    model = getattr(transformers, cls_name)(cfg).eval()
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    n = sum(v.numel() for v in state.values())
    save_file(state, weights + ".tmp", metadata={"format": "pt"})
    os.replace(weights + ".tmp", weights)
    cfg_dict = cfg.to_dict()
    cfg_dict["architectures"] = [cls_name]
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(cfg_dict, f, indent=2, sort_keys=True)
    tiny_dir = os.path.join(REPO, "tests", "data", "models", tiny)
    for name in TOKENIZER_FILES:
        src = os.path.join(tiny_dir, name)
        if os.path.exists(src):
            shutil.copyfile(src, os.path.join(path, name))
    with open(os.path.join(tiny_dir, "preprocessor_config.json")) as f:
        pre = json.load(f)
    pre["size"] = {"shortest_edge": image_size}
    with open(os.path.join(path, "preprocessor_config.json"), "w") as f:
        json.dump(pre, f, indent=2, sort_keys=True)
    print(f"{path}: {cls_name}, {n / 1e6:.1f} M parameters, "
          f"{os.path.getsize(weights) / 2**30:.2f} GiB")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(os.path.expanduser("~"), ".cache", "mmembed",
                                                  "bench"))
    ap.add_argument("--only", choices=[m[0] for m in MODELS], help="write one model only")
    ap.add_argument("--force", action="store_true", help="rewrite existing checkpoints")
    args = ap.parse_args()
    for folder, config, cls_name, tiny, size in MODELS:
        if (args.only and folder != args.only) or (not args.only and folder in ON_REQUEST):
            continue
        write_model(args.out, folder, config, cls_name, tiny, size, args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
