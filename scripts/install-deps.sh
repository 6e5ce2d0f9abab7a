#!/usr/bin/env bash
# Installs the Debian 12 packages mmembed needs to build, test and benchmark.
# Safe to rerun; does nothing when everything is already installed.
set -euo pipefail

# Installed with --no-install-recommends, so every package the build or the tests use is named
# here: CI runs the README's commands in a pristine Debian 12 root (.ci/pristine-root), where a
# package missing from this list fails the build. oneDNN is found by its header and library, not
# by its CMake config: Debian's libdnnl-dev config requires OpenCL (ocl-icd-opencl-dev, only a
# Recommends), which we do not use (src/kernels/CMakeLists.txt).
packages=(
  # toolchain and build
  build-essential cmake ninja-build pkg-config ccache git
  # GEMM backends (oneDNN is the default; OpenBLAS also gives LAPACK to PCA) and eigensolvers
  libopenblas-dev libblis-dev libdnnl-dev
  libarpack2-dev libspectra-dev
  # JSON, the CLI's option parser, zlib (PyTorch zip checkpoints), HTTP (Hub and image downloads)
  nlohmann-json3-dev libcli11-dev zlib1g-dev
  libcurl4-openssl-dev
  # image decoding (JPEG, PNG, WebP, GIF), plots (cairo) and their font
  libjpeg62-turbo-dev libpng-dev libwebp-dev libgif-dev
  libcairo2-dev fonts-dejavu-core
  # collections: items and provenance in SQLite, approximate nearest neighbours from FAISS
  libsqlite3-dev libfaiss-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # test-only: the HTML map's tests load it in headless Chromium (they skip without it)
  chromium
  # test-only: the generated zsh completion is syntax-checked by zsh and the man page by groff
  zsh groff-base
  # tokenizers: regexes (Oniguruma) and Unicode normalization (ICU)
  libonig-dev libicu-dev
  # the fuzzers and the sanitizer runtimes (scripts/test.sh)
  clang libclang-rt-14-dev
  # the real-model fetcher and the Hub interop test (scripts/test.sh)
  python3 python3-pip
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}" >&2
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
