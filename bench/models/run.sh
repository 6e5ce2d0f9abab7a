#!/usr/bin/env bash
# CLIP and sentence-transformers end to end, mmembed (through the Embedder) against the reference
# (transformers / sentence-transformers on PyTorch, CPU), side by side in one run; prints a
# Markdown table with the ratios (bench/models/table.py).
#
#   .venv-ref/bin/python bench/models/make_random_checkpoints.py   # once: the CLIP folders
#   scripts/real_models/fetch.py ...                                # once: all-MiniLM-L6-v2
#   bench/models/run.sh build-perf [OUT_DIR]        # OUT_DIR default: $MODELS_DIR/results-models
#
# Every case (model x task x batch x threads) runs in its own processes, interleaved: mmembed,
# then the reference "tuned", then the reference "default", so the three see the same machine
# load and each peak RSS belongs to one case. The loops run batch outermost, then model, so the
# cheap cells (batch 1) are recorded first. Results go to OUT_DIR/results.jsonl (one JSON line
# per process, appended; table.py keeps the last line of each cell), the table to
# OUT_DIR/table.md. The machine's load (uptime) is recorded before and after every case.
#
# Reference settings (the thread count is always applied with torch.set_num_threads):
#   default - nothing else: what a user who asks for N threads gets;
#   tuned   - $TUNED_ENV, by default OMP_WAIT_POLICY=PASSIVE, OPENBLAS_NUM_THREADS=N and
#             OPENBLAS_CORETYPE=SkylakeX (docs/performance.md, "BridgeTower end to end", says why).
#
# Environment: MODELS_DIR (random CLIP checkpoints, default $HOME/.cache/mmembed/bench),
# REAL_DIR (real model folders laid out by an older fetch.py, default
# $HOME/.cache/mmembed/real-models); a model name is looked up in MODELS_DIR, then REAL_DIR, then
# in the Hugging Face cache as sentence-transformers/NAME (where fetch.py installs it), MODELS, TASKS (text image; a sentence-transformers model has text only),
# BATCHES, THREADS (space-separated lists), IMPLS (any of: mmembed tuned default), MIN_TIME
# (seconds of timed calls per case, default 2), MAX_REPS (default 7; at least 3 calls are timed
# unless MAX_REPS is smaller), WARMUP_BATCH (the warm-up call's batch; default: the case's batch,
# 1 saves a full call on the slow cells), PREPROCESS (CLIP images: excluded (default) or timed),
# PY (the reference's python; default .venv-realmodels, which has sentence-transformers),
# TUNED_ENV.
set -euo pipefail

BUILD=${1:?usage: run.sh BUILD_DIR [OUT_DIR]}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
MODELS_DIR=${MODELS_DIR:-$HOME/.cache/mmembed/bench}
REAL_DIR=${REAL_DIR:-$HOME/.cache/mmembed/real-models}
OUT=${2:-$MODELS_DIR/results-models}
MODELS=${MODELS:-"all-MiniLM-L6-v2 clip-vit-base-patch32 clip-vit-base-patch16 clip-vit-large-patch14"}
TASKS=${TASKS:-"text image"}
BATCHES=${BATCHES:-"1 32"}
THREADS=${THREADS:-"1 2"}
IMPLS=${IMPLS:-"mmembed tuned default"}
MIN_TIME=${MIN_TIME:-2}
MAX_REPS=${MAX_REPS:-7}
WARMUP_BATCH=${WARMUP_BATCH:-}
PREPROCESS=${PREPROCESS:-excluded}
if [ -z "${PY:-}" ]; then
  PY=$ROOT/.venv-realmodels/bin/python
  [ -x "$PY" ] || PY=$ROOT/.venv-ref/bin/python
fi
TUNED_ENV=${TUNED_ENV:-"OMP_WAIT_POLICY=PASSIVE OPENBLAS_CORETYPE=SkylakeX"}
BENCH=$BUILD/bench/bench_models

[ -x "$BENCH" ] || { echo "run.sh: $BENCH not built (cmake --build $BUILD --target bench_models)" >&2; exit 1; }
HF_CACHE=${HF_HUB_CACHE:-${HUGGINGFACE_HUB_CACHE:-${HF_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/huggingface}/hub}}
model_dir() {
  local repo="$HF_CACHE/models--sentence-transformers--$1"
  if [ -d "$MODELS_DIR/$1" ]; then echo "$MODELS_DIR/$1"
  elif [ -d "$REAL_DIR/$1" ]; then echo "$REAL_DIR/$1"
  else echo "$repo/snapshots/$(cat "$repo/refs/main" 2>/dev/null)"; fi
}
for m in $MODELS; do
  [ -f "$(model_dir "$m")/model.safetensors" ] || {
    echo "run.sh: $(model_dir "$m") has no model.safetensors; run bench/models/make_random_checkpoints.py (CLIP) or scripts/real_models/fetch.py" >&2
    exit 1
  }
done
mkdir -p "$OUT"
RESULTS=$OUT/results.jsonl

# Warm the page cache (load times are measured warm) and record the machine.
for m in $MODELS; do cat "$(model_dir "$m")/model.safetensors" > /dev/null; done
{
  echo "{\"meta\": \"start\", \"date\": \"$(date -u +%FT%TZ)\", \"uptime\": \"$(uptime)\","
  echo " \"commit\": \"$(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet -- src || echo +local)\","
  echo " \"bench_built\": \"$(date -u -r "$BENCH" +%FT%TZ)\","
  echo " \"cpu\": \"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)\", \"nproc\": $(nproc),"
  echo " \"tuned_env\": \"$TUNED_ENV\", \"min_time\": $MIN_TIME, \"max_reps\": $MAX_REPS,"
  echo " \"warmup_batch\": \"${WARMUP_BATCH:-batch}\"}"
} | tr -d '\n' >> "$RESULTS"
echo >> "$RESULTS"

load1() { cut -d, -f1 < /proc/loadavg | cut -d' ' -f1; }

run_case() {  # impl model task batch threads
  local impl=$1 model=$2 task=$3 batch=$4 threads=$5 line load_before
  local args=(--model "$(model_dir "$model")" --task "$task" --batch "$batch" --threads "$threads"
              --min-time "$MIN_TIME" --max-reps "$MAX_REPS" --preprocess "$PREPROCESS")
  [ -z "$WARMUP_BATCH" ] || args+=(--warmup-batch "$WARMUP_BATCH")
  load_before=$(load1)
  case $impl in
    mmembed) line=$("$BENCH" "${args[@]}") ;;
    tuned) line=$(env $TUNED_ENV OPENBLAS_NUM_THREADS="$threads" "$PY" "$HERE/bench_reference.py" case "${args[@]}") ;;
    default) line=$("$PY" "$HERE/bench_reference.py" case "${args[@]}") ;;
  esac
  # Tag every line with its setting and the 1-minute load average before and after.
  line="${line%\}}, \"setting\": \"$impl\", \"load1_before\": $load_before, \"load1_after\": $(load1)}"
  echo "$line" >> "$RESULTS"
  echo "$(date -u +%T) $impl $model $task b$batch t$threads: $(echo "$line" | sed -n 's/.*"items_per_s": \([0-9.]*\).*/\1/p')/s (load $load_before)" >&2
}

for batch in $BATCHES; do
  for model in $MODELS; do
    for task in $TASKS; do
      if [ "$task" = image ] && [ -f "$(model_dir "$model")/modules.json" ]; then continue; fi
      for threads in $THREADS; do
        for impl in $IMPLS; do
          run_case "$impl" "$model" "$task" "$batch" "$threads" || echo "run.sh: $impl $model $task b$batch t$threads failed" >&2
        done
      done
    done
  done
done
echo "{\"meta\": \"end\", \"date\": \"$(date -u +%FT%TZ)\", \"uptime\": \"$(uptime)\"}" >> "$RESULTS"

"$PY" "$HERE/table.py" "$RESULTS" | tee "$OUT/table.md"
