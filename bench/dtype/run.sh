#!/usr/bin/env bash
# bf16 and int8 against fp32, accuracy and time, for the models at hand (issue #22); one JSON line
# per (model, input kind, dtype, threads) from build/bench/bench_dtype, into OUT (default
# $HOME/.cache/mmembed/bench/dtype.jsonl, appended).
#
#   bench/dtype/run.sh BUILD_DIR [OUT]
# Models: the random-weight bridgetower-large-itm-mlm-itc of bench/bridgetower/
# make_random_checkpoints.py (under $MODELS_DIR, default $HOME/.cache/mmembed/bench), the real
# all-MiniLM-L6-v2 in the Hugging Face cache (scripts/real_models/fetch.py), and the toy models.
# Inputs: the held-out toy scenes (tests/data/toy-scenes/manifest.tsv).
set -euo pipefail
BUILD=${1:?usage: run.sh BUILD_DIR [OUT]}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
MODELS_DIR=${MODELS_DIR:-$HOME/.cache/mmembed/bench}
OUT=${2:-$MODELS_DIR/dtype.jsonl}
BENCH=$BUILD/bench/bench_dtype
MANIFEST=$ROOT/tests/data/toy-scenes/manifest.tsv
THREADS=${THREADS:-"2 1"}
DTYPES=${DTYPES:-"bf16 int8"}
run() { "$BENCH" "$@" --manifest "$MANIFEST" | tee -a "$OUT"; }
echo "{\"meta\": \"start\", \"date\": \"$(date -u +%FT%TZ)\", \"commit\": \"$(git -C "$ROOT" rev-parse --short HEAD)\", \"cpu\": \"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)\", \"nproc\": $(nproc)}" >> "$OUT"
LARGE=$MODELS_DIR/bridgetower-large-itm-mlm-itc
MINILM=$(ls -d "${HF_HOME:-$HOME/.cache/huggingface}"/hub/models--sentence-transformers--all-MiniLM-L6-v2/snapshots/*/ 2>/dev/null | head -1 || true)
for d in $DTYPES; do
  for t in $THREADS; do
    if [ -f "$LARGE/model.safetensors" ]; then
      for k in image text pair; do run --model "$LARGE" --kind $k --limit 16 --batch 8 --threads $t --reps 2 --dtype $d; done
    fi
    if [ -n "$MINILM" ]; then
      run --model "$MINILM" --kind text --batch 32 --threads $t --reps 3 --dtype $d
    fi
  done
  for m in toy-bridgetower toy-clip; do
    for k in image text; do run --model "$ROOT/tests/data/models/$m" --kind $k --reps 1 --dtype $d; done
  done
done
