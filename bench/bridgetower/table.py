#!/usr/bin/env python3
"""Markdown tables from bench/bridgetower/run.sh's results.jsonl (the last line of each cell
wins): throughput, ratios against the reference's tuned and default runs, peak RSS, load time.

    python3 bench/bridgetower/table.py bench-out/bridgetower/results.jsonl
"""
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench_results import print_meta, read_results  # noqa: E402

UNIT = {"image": "images/s", "text16": "texts/s", "text77": "texts/s", "pair": "pairs/s"}
TASK_NAME = {"image": "image", "text16": "text, 16 tokens", "text77": "text, 77 tokens",
             "pair": "pair (image + 16 tokens)"}

def main(path):
    cells, meta = read_results(path)
    print_meta(meta)
    keys = sorted({k[:4] for k in cells},
                  key=lambda k: (k[0], list(UNIT).index(k[1]), k[2], k[3]))
    print("| model | task | batch | threads | mmembed | ref tuned | ref default | "
          "x tuned | x default | CPU s/item mmembed | CPU s/item ref tuned | x tuned (CPU) | "
          "RSS mmembed MiB | RSS ref tuned MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")

    def fmt(r):
        return f"{r['items_per_s']:.3g}" if r else "-"

    ratios = {"tuned": [], "default": [], "tuned (CPU time)": []}
    for k in keys:
        ours, tuned, default = (cells.get(k + (i,)) for i in ("mmembed", "tuned", "default"))
        row = [k[0].replace("bridgetower-", ""), TASK_NAME[k[1]], str(k[2]), str(k[3]),
               f"{fmt(ours)} {UNIT[k[1]]}" if ours else "-", fmt(tuned), fmt(default)]
        for name, ref in (("tuned", tuned), ("default", default)):
            if ours and ref:
                x = ours["items_per_s"] / ref["items_per_s"]
                ratios[name].append(x)
                row.append(f"{x:.2f}")
            else:
                row.append("-")
        cpu = [r["cpu_util"] * r["median_s"] / r["batch"] if r and "cpu_util" in r else None
               for r in (ours, tuned)]
        row += [f"{c:.3g}" if c else "-" for c in cpu]
        if cpu[0] and cpu[1]:
            ratios["tuned (CPU time)"].append(cpu[1] / cpu[0])
            row.append(f"{cpu[1] / cpu[0]:.2f}")
        else:
            row.append("-")
        row.append(f"{ours['peak_rss_mib']:.0f}" if ours else "-")
        row.append(f"{tuned['peak_rss_mib']:.0f}" if tuned else "-")
        print("| " + " | ".join(row) + " |")
    print()
    for name, xs in ratios.items():
        if xs:
            print(f"mmembed / reference {name}: min {min(xs):.2f}, median "
                  f"{statistics.median(xs):.2f}, max {max(xs):.2f} over {len(xs)} cases.")
    print()
    print("| model | load mmembed s | load ref tuned s | load ref default s |")
    print("|---|---|---|---|")
    for model in sorted({k[0] for k in keys}):
        row = [model]
        for impl in ("mmembed", "tuned", "default"):
            loads = [r["load_s"] for kk, r in cells.items() if kk[0] == model and kk[4] == impl]
            row.append(f"{statistics.median(loads):.3f}" if loads else "-")
        print("| " + " | ".join(row) + " |")
    print()
    print("Load: median over the cases' processes (warm page cache). CPU s/item: user + system "
          "CPU time of the timed calls per item (all threads), a measure that a shared machine "
          "disturbs less than wall time; x tuned (CPU) = reference CPU s/item / mmembed's.")

if __name__ == "__main__":
    main(sys.argv[1])
