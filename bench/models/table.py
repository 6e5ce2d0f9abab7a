#!/usr/bin/env python3
"""Markdown tables from bench/models/run.sh's results.jsonl (the last line of each cell wins):
throughput, ratios against the reference's tuned and default runs, CPU time per item, peak RSS,
load times, the machine's load.

    python3 bench/models/table.py ~/.cache/mmembed/bench/results-models/results.jsonl [--target 1.5]
"""
import argparse
import sys
import os
import statistics

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench_results import print_meta, read_results  # noqa: E402


UNIT = {"image": "images/s", "text": "texts/s"}
MODEL_ORDER = ["all-MiniLM-L6-v2", "clip-vit-base-patch32", "clip-vit-base-patch16",
               "clip-vit-large-patch14"]


def short(model):
    name = os.path.basename(model.rstrip("/"))
    return name.replace("clip-vit-", "ViT-").replace("base-patch", "B/").replace(
        "large-patch", "L/")


def order(model):
    name = os.path.basename(model.rstrip("/"))
    return MODEL_ORDER.index(name) if name in MODEL_ORDER else len(MODEL_ORDER)


def cpu_per_item(r):
    if not r or "cpu_s" not in r:
        return None
    return r["cpu_s"] / (len(r["times_s"]) * r["batch"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("results")
    ap.add_argument("--target", type=float, default=1.5, help="ratio the issue asks for")
    args = ap.parse_args()
    cells, meta = read_results(args.results)
    print_meta(meta)
    keys = sorted({k[:4] for k in cells},
                  key=lambda k: (order(k[0]), list(UNIT).index(k[1]), k[2], k[3]))
    print("| model | task | batch | threads | load avg | mmembed | ref tuned | ref default | "
          "x tuned | x default | CPU ms/item mmembed | CPU ms/item ref tuned | x tuned (CPU) | "
          "reps (ours/tuned/default) | RSS mmembed MiB | RSS ref tuned MiB |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|")

    def fmt(r):
        return f"{r['items_per_s']:.3g}" if r else "-"

    ratios = {"tuned": [], "default": [], "tuned (CPU time)": []}
    met = {"tuned": 0, "default": 0, "tuned (CPU time)": 0}
    for k in keys:
        ours, tuned, default = (cells.get(k + (i,)) for i in ("mmembed", "tuned", "default"))
        loads = [r[f] for r in (ours, tuned, default) if r
                 for f in ("load1_before", "load1_after") if f in r]
        row = [short(k[0]), k[1], str(k[2]), str(k[3]),
               f"{min(loads):.1f}-{max(loads):.1f}" if loads else "-",
               f"{fmt(ours)} {UNIT[k[1]]}" if ours else "-", fmt(tuned), fmt(default)]
        for name, ref in (("tuned", tuned), ("default", default)):
            if ours and ref:
                x = ours["items_per_s"] / ref["items_per_s"]
                ratios[name].append(x)
                met[name] += x >= args.target
                row.append(f"**{x:.2f}**" if x >= args.target else f"{x:.2f}")
            else:
                row.append("-")
        cpu = [cpu_per_item(r) for r in (ours, tuned)]
        row += [f"{1e3 * c:.3g}" if c else "-" for c in cpu]
        if cpu[0] and cpu[1]:
            x = cpu[1] / cpu[0]
            ratios["tuned (CPU time)"].append(x)
            met["tuned (CPU time)"] += x >= args.target
            row.append(f"**{x:.2f}**" if x >= args.target else f"{x:.2f}")
        else:
            row.append("-")
        row.append("/".join(str(len(r["times_s"])) if r else "-" for r in (ours, tuned, default)))
        row.append(f"{ours['peak_rss_mib']:.0f}" if ours else "-")
        row.append(f"{tuned['peak_rss_mib']:.0f}" if tuned else "-")
        print("| " + " | ".join(row) + " |")
    print()
    for name, xs in ratios.items():
        if xs:
            print(f"mmembed / reference {name}: min {min(xs):.2f}, median "
                  f"{statistics.median(xs):.2f}, max {max(xs):.2f}; {met[name]} of {len(xs)} "
                  f"cells at {args.target}x or more.  ")
    print()
    print("| model | load mmembed s | load ref tuned s | load ref default s |")
    print("|---|---:|---:|---:|")
    for model in sorted({k[0] for k in keys}, key=order):
        row = [short(model)]
        for impl in ("mmembed", "tuned", "default"):
            loads = [r["load_s"] for kk, r in cells.items() if kk[0] == model and kk[4] == impl]
            row.append(f"{statistics.median(loads):.3f}" if loads else "-")
        print("| " + " | ".join(row) + " |")
    print()
    print("Throughput: items per second of wall time, median of the timed calls. load avg: the "
          "1-minute load average before and after the cell's three processes (min-max). CPU "
          "ms/item: user + system CPU time of all timed calls (all threads) per item, which a "
          "shared machine disturbs less than wall time; x tuned (CPU) = reference CPU ms/item / "
          "mmembed's. Load: median over the cases' processes (warm page cache). Bold: at or "
          f"above the {args.target}x target.")


if __name__ == "__main__":
    main()
