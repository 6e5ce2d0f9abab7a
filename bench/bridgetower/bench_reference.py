#!/usr/bin/env python3
"""One benchmark case of the reference (transformers BridgeTower on PyTorch, CPU, fp32).

    /work/main/.venv-ref/bin/python bench/bridgetower/bench_reference.py \
        --model ~/.cache/mmembed/bench/bridgetower-base --task image --batch 8 --threads 2

Prints one JSON line: load_s (from_pretrained, warm page cache), times_s (each timed call),
median_s, items_per_s, peak_rss_mib (this process: the case runs alone in it), and the torch
settings seen. The thread setting is applied with torch.set_num_threads(threads); everything else
(OMP_WAIT_POLICY, which OpenBLAS build) comes from the environment that run.sh sets for the
"default" and "tuned" runs.

Tasks, on the same inputs as bench_mmembed (random ids / pixels of a fixed seed):
  image   - the image embedding. ITC checkpoint: image_embeds, computed from the vision tower alone
            with the model's own modules (forward_pre, the resblocks the model runs, ln_post on the
            CLS row, cross_modal_image_transform + token type 1, itc_image_head, normalize): the
            cheapest path to the same values (the stock BridgeTowerForContrastiveLearning call
            would also run the text tower and the cross-modal layers). Trunk-only checkpoint:
            the same without the ITC head.
  text16, text77 - the text embedding of texts of 16 / 77 tokens: text_model (RoBERTa) alone,
            then itc_text_head + normalize on the CLS row (ITC checkpoint) or the CLS row itself.
  pair    - image + 16-token caption through the whole model: BridgeTowerForContrastiveLearning
            -> cross_embeds (ITC checkpoint) or BridgeTowerModel -> pooler_output (trunk).
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time


def make_inputs(cfg, task, batch, seed=0):
    import torch
    g = torch.Generator().manual_seed(seed)
    inputs = {}
    if task in ("text16", "text77", "pair"):
        length = 77 if task == "text77" else 16
        vocab = cfg.text_config.vocab_size
        ids = torch.randint(3, vocab, (batch, length), generator=g, dtype=torch.long)
        ids[:, 0] = 0   # <s>
        ids[:, -1] = 2  # </s>
        inputs["input_ids"] = ids
        inputs["attention_mask"] = torch.ones(batch, length, dtype=torch.long)
    if task in ("image", "pair"):
        s = cfg.vision_config.image_size
        inputs["pixel_values"] = torch.randn(batch, 3, s, s, generator=g, dtype=torch.float32)
    return inputs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--task", required=True, choices=["image", "text16", "text77", "pair"])
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--min-time", type=float, default=2.0, help="time the calls for at least this")
    ap.add_argument("--max-reps", type=int, default=7)
    args = ap.parse_args()

    import torch
    import transformers
    torch.set_num_threads(args.threads)

    with open(os.path.join(args.model, "config.json")) as f:
        arch = json.load(f).get("architectures", ["BridgeTowerModel"])[0]
    itc = arch == "BridgeTowerForContrastiveLearning"
    cls = transformers.BridgeTowerForContrastiveLearning if itc else transformers.BridgeTowerModel
    t0 = time.perf_counter()
    model = cls.from_pretrained(args.model).eval()
    load_s = time.perf_counter() - t0
    trunk = model.bridgetower if itc else model
    cfg = trunk.config

    def image_embed(pixel_values):
        visual = trunk.vision_model.visual
        x = visual.forward_pre(pixel_values)  # [Ni, B, Hv]
        for block in visual.transformer.resblocks[:len(trunk.text_model.encoder.layer)]:
            x = block(x)
        cls_row = visual.ln_post(x[0])  # ln_post acts per token: the CLS row suffices
        y = trunk.cross_modal_image_transform(cls_row)
        y = y + trunk.token_type_embeddings(torch.ones(1, dtype=torch.long))
        if itc:
            y = torch.nn.functional.normalize(model.itc_image_head(y), dim=-1, p=2)
        return y

    def text_embed(input_ids, attention_mask):
        h = trunk.text_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        y = h[:, 0, :]
        if itc:
            y = torch.nn.functional.normalize(model.itc_text_head(y), dim=-1, p=2)
        return y

    def pair_embed(**inputs):
        out = model(**inputs)
        return out.cross_embeds if itc else out.pooler_output

    def run(inputs):
        with torch.inference_mode():
            if args.task == "image":
                return image_embed(inputs["pixel_values"])
            if args.task == "pair":
                return pair_embed(**inputs)
            return text_embed(inputs["input_ids"], inputs["attention_mask"])

    run(make_inputs(cfg, args.task, 1, seed=1))  # warm-up on one item
    inputs = make_inputs(cfg, args.task, args.batch)
    times = []
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    while len(times) < args.max_reps:
        t = time.perf_counter()
        out = run(inputs)
        times.append(time.perf_counter() - t)
        if time.perf_counter() - start >= args.min_time:
            break
    wall = time.perf_counter() - start
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    assert torch.isfinite(out).all()
    med = statistics.median(times)
    print(json.dumps({
        "impl": "reference", "model": os.path.basename(os.path.normpath(args.model)),
        "task": args.task, "batch": args.batch, "threads": args.threads,
        "load_s": round(load_s, 4), "times_s": [round(t, 5) for t in times],
        "median_s": round(med, 5), "items_per_s": round(args.batch / med, 4),
        "cpu_util": round(cpu / wall, 3),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
        "ld_library_path": os.environ.get("LD_LIBRARY_PATH", ""),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
