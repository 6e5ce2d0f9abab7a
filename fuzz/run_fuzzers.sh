#!/usr/bin/env bash
# Runs every fuzzer (io parsers, image decoders) for a bounded time on a scratch copy of its seed corpus.
#   fuzz/run_fuzzers.sh BUILD_DIR SECONDS
# BUILD_DIR was configured with -DMMEMBED_BUILD_FUZZ=ON (see fuzz/CMakeLists.txt) and the
# fuzz_* targets are built. Exits non-zero when any fuzzer finds a crash, a sanitizer report,
# a timeout (-timeout, per input) or runs out of memory (-rss_limit_mb); the reproducer is left
# in the printed artifacts folder. The committed seed corpus is never modified.
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 BUILD_DIR SECONDS" >&2
  exit 2
fi
build_dir=$1
seconds=$2
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/mmembed-fuzz.XXXXXX")
echo "fuzz work folder: $work"

declare -A dicts=(
  [fuzz_safetensors_header]=safetensors.dict
  [fuzz_zip_reader]=zip.dict
  [fuzz_unpickler]=unpickler.dict
  [fuzz_image_decode]=image.dict
)
failed=()
for target in fuzz_safetensors_header fuzz_zip_reader fuzz_unpickler fuzz_image_decode; do
  exe="$build_dir/fuzz/$target"
  if [[ ! -x $exe ]]; then
    echo "$target: not built ($exe missing)" >&2
    failed+=("$target")
    continue
  fi
  corpus="$work/corpus/$target"
  mkdir -p "$corpus" "$work/artifacts"
  cp "$here/corpus/$target"/* "$corpus"/
  log="$work/$target.log"
  echo "== $target: ${seconds}s"
  if "$exe" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -dict="$here/${dicts[$target]}" -print_final_stats=1 \
      -artifact_prefix="$work/artifacts/$target-" "$corpus" >"$log" 2>&1; then
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
    echo "   ok: ${execs:-?} executions, $cov, corpus $(ls "$corpus" | wc -l) inputs"
  else
    echo "   FAILED: see $log and $work/artifacts/" >&2
    tail -40 "$log" >&2
    failed+=("$target")
  fi
done

if [[ ${#failed[@]} -ne 0 ]]; then
  echo "fuzzers failed: ${failed[*]}" >&2
  exit 1
fi
echo "all fuzzers passed"
