#!/usr/bin/env python3
"""Reference-side benchmark for the CLIP and sentence-transformers configurations (PyTorch, CPU, fp32).

    # one case, one JSON line (the case runs alone in this process, so peak RSS is its own):
    .venv-realmodels/bin/python bench/models/bench_reference.py case \
        --model ~/.cache/huggingface/hub/models--sentence-transformers--all-MiniLM-L6-v2/snapshots/<commit> --task text --batch 32 --threads 2
    # the matrix: tasks x batch {1, 32} x threads {1, 2}, each case in a fresh process:
    .venv-realmodels/bin/python bench/models/bench_reference.py matrix --model DIR [--model DIR ...]

Inputs are real: the texts of tests/data/real/texts.txt (cycled to fill a batch) and, for CLIP
images, the photos in tests/data/images (cat, motorcycle, astronaut, coffee, rocket), so the
token lengths are those of natural sentences, not a fixed length.

Family (from the folder, as mmembed decides it): modules.json -> sentence-transformers, else
config.json model_type "clip".
  sentence-transformers, task text: SentenceTransformer(folder).encode(batch) when
      sentence-transformers is importable (--impl st, the default), else (--impl transformers)
      AutoTokenizer + AutoModel + the pooling of 1_Pooling/config.json + Normalize, written out.
      Tokenization is inside the timed call (it is part of embedding a text).
  clip, task text: CLIPTokenizer(padding=True, truncation=True) + CLIPModel.get_text_features +
      L2 normalisation; tokenization timed.
  clip, task image: CLIPImageProcessor + CLIPModel.get_image_features + L2 normalisation; with
      --preprocess excluded the pixel values are made once, outside the timed calls (the issue's
      images/s counts the model; both numbers are useful, and the JSON says which one it is).

Prints: load_s (from_pretrained / SentenceTransformer(), warm page cache), times_s, median_s,
items_per_s, cpu_s (user + system CPU time of the timed calls, all threads), cpu_util (cpu_s over
their wall time), peak_rss_mib (ru_maxrss of this process), and the versions and thread settings
seen. Nothing is recorded here: copy numbers into docs/performance.md with the machine, the
commit and the load of the machine at the time.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEXTS = ROOT / "tests" / "data" / "real" / "texts.txt"
IMAGES = ["cat_landscape.jpg", "motorcycle_left.jpg", "motorcycle_portrait.jpg",
          "astronaut_square.png", "coffee_lossless.webp", "rocket_progressive.jpg", "cat.webp"]


def family_of(model: Path) -> str:
    if (model / "modules.json").is_file():
        return "sentence-transformers"
    with open(model / "config.json") as f:
        model_type = json.load(f).get("model_type")
    if model_type == "clip":
        return "clip"
    sys.exit(f"{model}: model_type {model_type!r} is neither clip nor a sentence-transformers folder")


def tasks_of(family: str) -> list[str]:
    return ["text", "image"] if family == "clip" else ["text"]


def batch_texts(batch: int, offset: int = 0) -> list[str]:
    with open(TEXTS, encoding="utf-8") as f:
        texts = [line.rstrip("\n") for line in f]
    return [texts[(offset + i) % len(texts)] for i in range(batch)]


def batch_images(batch: int):
    from PIL import Image
    imgs = [Image.open(ROOT / "tests" / "data" / "images" / name).convert("RGB") for name in IMAGES]
    return [imgs[i % len(imgs)] for i in range(batch)]


def sentence_runner(model: Path, impl: str):
    import torch
    if impl == "st":
        from sentence_transformers import SentenceTransformer
        t0 = time.perf_counter()
        st = SentenceTransformer(str(model), device="cpu")
        load_s = time.perf_counter() - t0

        def run(texts):
            return st.encode(texts, batch_size=len(texts), convert_to_numpy=True,
                             show_progress_bar=False)
        return run, load_s

    from transformers import AutoModel, AutoTokenizer
    with open(model / "1_Pooling" / "config.json") as f:
        pooling = json.load(f)
    modules = json.loads((model / "modules.json").read_text())
    normalize = any(m["type"].endswith("Normalize") for m in modules)
    max_len = 512
    if (model / "sentence_bert_config.json").is_file():
        max_len = json.loads((model / "sentence_bert_config.json").read_text()).get("max_seq_length", 512)
    t0 = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(str(model))
    net = AutoModel.from_pretrained(str(model)).eval()
    load_s = time.perf_counter() - t0

    def run(texts):
        with torch.no_grad():
            enc = tok(texts, padding=True, truncation=True, max_length=max_len, return_tensors="pt")
            hidden = net(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            if pooling.get("pooling_mode_cls_token"):
                out = hidden[:, 0]
            elif pooling.get("pooling_mode_max_tokens"):
                out = hidden.masked_fill(mask == 0, -1e9).max(1).values
            else:
                out = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            if normalize:
                out = torch.nn.functional.normalize(out, p=2, dim=1)
            return out.numpy()
    return run, load_s


def _features(out):
    """get_text_features / get_image_features: a tensor in transformers 4, the tower's output with the projected
    features as pooler_output in transformers 5."""
    import torch
    return out if torch.is_tensor(out) else out.pooler_output


def clip_runner(model: Path, task: str, preprocess_timed: bool):
    import torch
    from transformers import CLIPImageProcessor, CLIPModel, CLIPTokenizer
    t0 = time.perf_counter()
    net = CLIPModel.from_pretrained(str(model)).eval()
    proc = CLIPImageProcessor.from_pretrained(str(model)) if task == "image" else None
    tok = CLIPTokenizer.from_pretrained(str(model)) if task == "text" else None
    load_s = time.perf_counter() - t0

    if task == "text":
        def run(texts):
            with torch.no_grad():
                enc = tok(texts, padding=True, truncation=True, return_tensors="pt")
                f = _features(net.get_text_features(**enc))
                return torch.nn.functional.normalize(f, dim=-1).numpy()
        return run, load_s

    def pixels(images):
        return proc(images=images, return_tensors="pt")["pixel_values"]

    if preprocess_timed:
        def run(images):
            with torch.no_grad():
                f = _features(net.get_image_features(pixel_values=pixels(images)))
                return torch.nn.functional.normalize(f, dim=-1).numpy()
        return run, load_s

    cache = {}

    def run(images):
        key = id(images)
        if key not in cache:
            cache.clear()
            cache[key] = pixels(images)
        with torch.no_grad():
            f = _features(net.get_image_features(pixel_values=cache[key]))
            return torch.nn.functional.normalize(f, dim=-1).numpy()
    return run, load_s


def run_case(args) -> dict:
    import torch
    torch.set_num_threads(args.threads)
    model = Path(args.model).expanduser()
    family = family_of(model)
    if args.task not in tasks_of(family):
        sys.exit(f"{model}: a {family} model has no task {args.task!r}")
    if family == "sentence-transformers":
        impl = args.impl
        if impl == "st":
            try:
                import sentence_transformers  # noqa: F401
            except ImportError:
                impl = "transformers"
        fn, load_s = sentence_runner(model, impl)
    else:
        impl = "transformers"
        fn, load_s = clip_runner(model, args.task, args.preprocess == "timed")
    inputs = batch_images(args.batch) if args.task == "image" else batch_texts(args.batch)

    # Warm-up (first-call allocations, lazy inits): the full batch unless --warmup-batch says less.
    warmup = args.warmup_batch or args.batch
    fn(inputs if warmup == args.batch else
       (batch_images(warmup) if args.task == "image" else batch_texts(warmup)))
    times = []
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    while len(times) < args.max_reps and (len(times) < 3 or time.perf_counter() - start < args.min_time):
        t0 = time.perf_counter()
        fn(inputs)
        times.append(time.perf_counter() - t0)
    wall = time.perf_counter() - start
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    median = statistics.median(times)
    import transformers
    return {
        "model": str(model), "family": family, "impl": impl, "task": args.task,
        "batch": args.batch, "threads": args.threads,
        "preprocess": (args.preprocess if args.task == "image" else "timed"),
        "warmup_batch": warmup, "load_s": round(load_s, 4), "times_s": [round(t, 5) for t in times],
        "median_s": round(median, 5), "items_per_s": round(args.batch / median, 3),
        "cpu_s": round(cpu, 4), "cpu_util": round(cpu / wall, 3),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "torch": torch.__version__, "transformers": transformers.__version__,
        "torch_threads": torch.get_num_threads(),
        "env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_CORETYPE", "MKL_NUM_THREADS")
                if k in os.environ},
    }


def run_matrix(args) -> None:
    rows = []
    for model in args.model:
        family = family_of(Path(model).expanduser())
        for task in tasks_of(family):
            for batch in args.batches:
                for threads in args.threads_list:
                    cmd = [sys.executable, __file__, "case", "--model", model, "--task", task,
                           "--batch", str(batch), "--threads", str(threads),
                           "--impl", args.impl, "--preprocess", args.preprocess,
                           "--min-time", str(args.min_time), "--max-reps", str(args.max_reps)]
                    out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True).stdout
                    row = json.loads(out.strip().splitlines()[-1])
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    print(f"\n| model | task | batch | threads | items/s | median s | load s | peak RSS MiB |", file=sys.stderr)
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |", file=sys.stderr)
    for r in rows:
        print(f"| {Path(r['model']).name} | {r['task']} | {r['batch']} | {r['threads']} | "
              f"{r['items_per_s']} | {r['median_s']} | {r['load_s']} | {r['peak_rss_mib']} |",
              file=sys.stderr)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--impl", choices=["st", "transformers"], default="st",
                        help="sentence-transformers models: the library, or transformers + "
                             "pooling written out (default st, falls back when not installed)")
    common.add_argument("--preprocess", choices=["timed", "excluded"], default="excluded",
                        help="CLIP images: time the image processor too, or only the model")
    common.add_argument("--min-time", type=float, default=2.0, help="time the calls for at least this")
    common.add_argument("--max-reps", type=int, default=7)
    common.add_argument("--warmup-batch", type=int, default=0,
                        help="batch of the warm-up call (default 0: the case's batch)")
    c = sub.add_parser("case", parents=[common], help="one case, one JSON line")
    c.add_argument("--model", required=True)
    c.add_argument("--task", required=True, choices=["text", "image"])
    c.add_argument("--batch", type=int, default=1)
    c.add_argument("--threads", type=int, default=1)
    m = sub.add_parser("matrix", parents=[common], help="every task x batch x threads, one process each")
    m.add_argument("--model", action="append", required=True, help="model folder (repeatable)")
    m.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    m.add_argument("--threads-list", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    if args.cmd == "case":
        print(json.dumps(run_case(args)))
    else:
        run_matrix(args)


if __name__ == "__main__":
    main()
