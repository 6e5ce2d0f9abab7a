#!/usr/bin/env bash
# Measures the GEMM table of docs/performance.md and prints it as Markdown.
#   bench/run_gemm_table.sh [build-dir]        (default: build; needs bench_gemm and bench_linear)
# Environment: PARTS (default "gemm linear") picks the tables; FULL=1 runs every M of gemm_shapes.h (12 x 10 shapes; long) instead of
# M = 77, 325, 442, 3536; REPS (default 3) and MIN_TIME (seconds, default 0.1) go to Google
# Benchmark; the table shows the median of the repetitions.
# Each backend runs in its own process: idle OpenBLAS and OpenMP workers spin for a while after
# a call and would steal a core from the next backend. OpenBLAS is run twice: as it comes (it
# picks its kernels from the CPU model; 0.3.21 does not know recent Xeons and falls back to
# Prescott) and with OPENBLAS_CORETYPE=SkylakeX forcing its AVX-512 kernels.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
reps=${REPS:-3}
min_time=${MIN_TIME:-0.1}
if [ "${FULL:-0}" = 1 ]; then mfilter='[0-9]+'; else mfilter='(77|325|442|3536)'; fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

for exe in bench_gemm bench_linear; do
  [ -x "$build/bench/$exe" ] || { echo "missing $build/bench/$exe: cmake --build $build --target $exe" >&2; exit 1; }
done
args=(--benchmark_repetitions="$reps" --benchmark_min_time="$min_time"
      --benchmark_report_aggregates_only=true --benchmark_out_format=json)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
parts=${PARTS:-gemm linear}
backends=""
case " $parts " in *" gemm "*) backends=$("$build/bench/bench_gemm" --benchmark_list_tests | cut -d/ -f2 | sort -u) ;; esac
for be in $backends; do
  echo "running $be ..." >&2
  "$build/bench/bench_gemm" "${args[@]}" --benchmark_out="$out/gemm_$be.json" \
    --benchmark_filter="^sgemm/$be/M:$mfilter/" >/dev/null 2>>"$out/log"
done
if echo "$backends" | grep -qx openblas; then
  echo "running openblas with OPENBLAS_CORETYPE=SkylakeX ..." >&2
  OPENBLAS_CORETYPE=SkylakeX "$build/bench/bench_gemm" "${args[@]}" \
    --benchmark_out="$out/gemm_openblas-skx.json" --benchmark_filter="^sgemm/openblas/M:$mfilter/" >/dev/null 2>>"$out/log"
fi
case " $parts " in *" linear "*)
  echo "running bench_linear ..." >&2
  "$build/bench/bench_linear" "${args[@]}" --benchmark_out="$out/linear.json" \
    --benchmark_filter="^linear/[a-z]+/M:$mfilter/" >/dev/null 2>>"$out/log" ;;
esac
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$out" "$load_before" "$load_after" <<'PY'
import json, os, re, sys
out, load_before, load_after = sys.argv[1:4]
pat = re.compile(r"^(sgemm|linear)/([\w-]+)/M:(\d+)/K:(\d+)/N:(\d+)/threads:(\d+)")

def medians(path, rename=None):
    d = json.load(open(path))
    res = {}
    # With one repetition Google Benchmark writes no aggregates: take the single run.
    want = "aggregate" if any(b.get("run_type") == "aggregate" for b in d["benchmarks"]) else "iteration"
    for b in d["benchmarks"]:
        if b.get("run_type") != want or (want == "aggregate" and b.get("aggregate_name") != "median"):
            continue
        m = pat.match(b["run_name"])
        kind, be, M, K, N, t = m.groups()
        res[(rename or be, int(M), int(K), int(N), int(t))] = b["GFLOP"]  # already a rate: GFLOP/s
    return d["context"], res

gemm, ctx = {}, {}
for f in sorted(os.listdir(out)):
    if f.startswith("gemm_"):
        name = f[5:-5]
        c, r = medians(os.path.join(out, f), rename=name)
        gemm.update(r)
        for k, v in c.items():
            if k.startswith("gemm.") and name == "openblas-skx":
                if k == "gemm.openblas":
                    ctx["gemm.openblas with OPENBLAS_CORETYPE=SkylakeX"] = v
            else:
                ctx.setdefault(k, v)
lin, lctx = {}, {}
if os.path.exists(os.path.join(out, "linear.json")):
    d = json.load(open(os.path.join(out, "linear.json")))
    lctx = d["context"]
    want = "aggregate" if any(b.get("run_type") == "aggregate" for b in d["benchmarks"]) else "iteration"
    for b in d["benchmarks"]:
        if b.get("run_type") != want or (want == "aggregate" and b.get("aggregate_name") != "median"):
            continue
        _, _, M, K, N, t = pat.match(b["run_name"]).groups()
        lin[(int(M), int(K), int(N), int(t))] = {k: b[k] for k in ("raw_GFLOPs", "op_GFLOPs", "op_over_raw")}
c0 = ctx or lctx
print(f"Load average (1/5/15 min) before: {load_before}; after: {load_after}; "
      f"{c0.get('num_cpus')} CPUs at {c0.get('mhz_per_cpu')} MHz; "
      f"each cell the median of the repetitions.\n")

if gemm:
    cols = [be for be in ("openblas", "openblas-skx", "blis", "dnnl") if any(k[0] == be for k in gemm)]
    shapes = sorted({k[1:4] for k in gemm}, key=lambda s: (s[0], s[1] * s[2], s[1]))
    for k, v in sorted(ctx.items()):
        if k.startswith("gemm.") or k.startswith("cblas"):
            print(f"- {k}: {v}")
    print()
    print("GFLOP/s (higher is better), y[M,N] = x[M,K] W[N,K]^T:\n")
    print("| M | K | N | " + " | ".join(f"{be} 1t | {be} 2t" for be in cols) + " |")
    print("|" + "---|" * (3 + 2 * len(cols)))
    for (M, K, N) in shapes:
        cells = []
        for be in cols:
            for t in (1, 2):
                v = gemm.get((be, M, K, N, t))
                cells.append(f"{v:.1f}" if v is not None else "-")
        print(f"| {M} | {K} | {N} | " + " | ".join(cells) + " |")
    # Per backend and thread count: median over the shapes.
    print()
    print("| backend | median over shapes, 1 thread | 2 threads |")
    print("|---|---|---|")
    for be in cols:
        row = []
        for t in (1, 2):
            vals = sorted(v for k, v in gemm.items() if k[0] == be and k[4] == t)
            row.append(f"{vals[len(vals) // 2]:.1f}" if vals else "-")
        print(f"| {be} | {row[0]} | {row[1]} |")

if lin:
    print()
    print(f"ops::linear (with bias) vs the raw sgemm of the selected backend ({lctx.get('gemm backend')}), "
          f"timed alternately in one loop:\n")
    print("| M | K | N | threads | raw GFLOP/s | linear GFLOP/s | linear / raw |")
    print("|---|---|---|---|---|---|---|")
    ratios = []
    for (M, K, N, t), c in sorted(lin.items()):
        ratios.append(c["op_over_raw"])
        print(f"| {M} | {K} | {N} | {t} | {c['raw_GFLOPs']:.1f} | {c['op_GFLOPs']:.1f} | {c['op_over_raw']:.3f} |")
    if ratios:
        ratios.sort()
        print(f"\nlinear / raw: min {ratios[0]:.3f}, median {ratios[len(ratios) // 2]:.3f}, "
              f"max {ratios[-1]:.3f} over {len(ratios)} cases")
PY
