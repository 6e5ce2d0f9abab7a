#!/usr/bin/env bash
# BridgeTower end to end, mmembed against the reference (transformers on PyTorch, CPU), side by
# side in one run; prints a Markdown table with the ratios (bench/bridgetower/table.py).
#
#   bench/bridgetower/make_random_checkpoints.py          # once (with the reference venv)
#   bench/bridgetower/run.sh build-perf [OUT_DIR]      # OUT_DIR default: $MODELS_DIR/results
#
# Every case (model x task x batch x threads) runs in its own processes, interleaved: mmembed,
# then the reference "tuned", then the reference "default", so the three see the same machine
# load and each peak RSS belongs to one case. Results go to OUT_DIR/results.jsonl (one JSON line
# per process; an existing file is appended to, and table.py keeps the last line of each cell),
# the table to OUT_DIR/table.md.
#
# Reference settings (the thread count is always applied with torch.set_num_threads):
#   default - nothing else: what a user who asks for N threads gets;
#   tuned   - $TUNED_ENV, by default OMP_WAIT_POLICY=PASSIVE (libgomp's idle threads sleep
#             instead of spinning), OPENBLAS_NUM_THREADS=N (Debian's OpenBLAS otherwise keeps its
#             own pool of one thread per core) and OPENBLAS_CORETYPE=SkylakeX (OpenBLAS 0.3.21
#             does not recognise this CPU and falls back to SSE3 kernels; docs/performance.md).
#
# Environment: MODELS_DIR (default $HOME/.cache/mmembed/bench), MODELS, TASKS, BATCHES, THREADS
# (space-separated lists), IMPLS (any of: mmembed tuned default), MIN_TIME (seconds of timed
# calls per case, default 2), MAX_REPS (default 5), PY (the reference's python), TUNED_ENV.
set -euo pipefail

BUILD=${1:?usage: run.sh BUILD_DIR [OUT_DIR]}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
MODELS_DIR=${MODELS_DIR:-$HOME/.cache/mmembed/bench}
OUT=${2:-$MODELS_DIR/results}
MODELS=${MODELS:-"bridgetower-base bridgetower-large-itm-mlm-itc"}
TASKS=${TASKS:-"image text16 text77 pair"}
BATCHES=${BATCHES:-"1 8"}
THREADS=${THREADS:-"1 2"}
IMPLS=${IMPLS:-"mmembed tuned default"}
MIN_TIME=${MIN_TIME:-2}
MAX_REPS=${MAX_REPS:-5}
PY=${PY:-$ROOT/.venv-ref/bin/python}
TUNED_ENV=${TUNED_ENV:-"OMP_WAIT_POLICY=PASSIVE OPENBLAS_CORETYPE=SkylakeX"}
BENCH=$BUILD/bench/bench_bridgetower

[ -x "$BENCH" ] || { echo "run.sh: $BENCH not built (cmake --build $BUILD --target bench_bridgetower)" >&2; exit 1; }
for m in $MODELS; do
  [ -f "$MODELS_DIR/$m/model.safetensors" ] || {
    echo "run.sh: $MODELS_DIR/$m has no model.safetensors; run bench/bridgetower/make_random_checkpoints.py" >&2
    exit 1
  }
done
mkdir -p "$OUT"
RESULTS=$OUT/results.jsonl

# Warm the page cache (load times are measured warm) and record the machine.
for m in $MODELS; do cat "$MODELS_DIR/$m/model.safetensors" > /dev/null; done
{
  echo "{\"meta\": \"start\", \"date\": \"$(date -u +%FT%TZ)\", \"uptime\": \"$(uptime)\","
  echo " \"commit\": \"$(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet -- src || echo +local)\","
  echo " \"cpu\": \"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)\", \"nproc\": $(nproc),"
  echo " \"tuned_env\": \"$TUNED_ENV\"}"
} | tr -d '\n' >> "$RESULTS"
echo >> "$RESULTS"

run_case() {  # impl model task batch threads
  local impl=$1 model=$2 task=$3 batch=$4 threads=$5 line
  local args=(--model "$MODELS_DIR/$model" --task "$task" --batch "$batch" --threads "$threads"
              --min-time "$MIN_TIME" --max-reps "$MAX_REPS")
  case $impl in
    mmembed) line=$("$BENCH" "${args[@]}") ;;
    tuned) line=$(env $TUNED_ENV OPENBLAS_NUM_THREADS="$threads" "$PY" "$HERE/bench_reference.py" "${args[@]}") ;;
    default) line=$("$PY" "$HERE/bench_reference.py" "${args[@]}") ;;
  esac
  # Tag the reference's lines with their setting.
  [ "$impl" = mmembed ] || line="${line%\}}, \"setting\": \"$impl\"}"
  echo "$line" >> "$RESULTS"
  echo "$impl $model $task b$batch t$threads: $(echo "$line" | sed -n 's/.*"items_per_s": \([0-9.]*\).*/\1/p')/s" >&2
}

for model in $MODELS; do
  for task in $TASKS; do
    for batch in $BATCHES; do
      for threads in $THREADS; do
        for impl in $IMPLS; do
          run_case "$impl" "$model" "$task" "$batch" "$threads" || echo "run.sh: $impl $model $task failed" >&2
        done
      done
    done
  done
done
echo "{\"meta\": \"end\", \"date\": \"$(date -u +%FT%TZ)\", \"uptime\": \"$(uptime)\"}" >> "$RESULTS"

"$PY" "$HERE/table.py" "$RESULTS" | tee "$OUT/table.md"
