#!/usr/bin/env bash
# Collections at scale, mmembed and FAISS's Python package side by side on the same data
# (issue #21; results in docs/performance.md, "Collections").
#   bench/index/run.sh [N] [DIM] [QUERIES]     default 1000000 512 1000
#   ONLY=flat,hnsw bench/index/run.sh ...      a subset (default: flat, hnsw and ivfpq)
# Needs the Release build (build/bench/bench_index) and PyPI for faiss-cpu (a venv of its own).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
n=${1:-1000000} d=${2:-512} nq=${3:-1000}
dir=${MMEMBED_BENCH_DIR:-/tmp/mmembed-index-bench}
venv="$root/.venv-bench-faiss"
if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check faiss-cpu numpy
fi
mkdir -p "$dir"
echo "== mmembed ($(git -C "$root" rev-parse --short HEAD))" >&2
only=${ONLY:-flat,hnsw,ivfpq}
"$root/build/bench/bench_index" --n "$n" --dim "$d" --queries "$nq" --dir "$dir" --only "$only" |
  tee "$dir/mmembed.json"
echo "== faiss-cpu (Python)" >&2
"$venv/bin/python" "$root/bench/index/faiss_py.py" "$dir" --only "$only" | tee "$dir/faiss.json"
