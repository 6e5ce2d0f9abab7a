#!/usr/bin/env bash
# Installs the Debian 12 packages mmembed needs to build, test and benchmark.
# Safe to rerun; does nothing when everything is already installed.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config ccache git
  libopenblas-dev libblis-dev libdnnl-dev
  libarpack2-dev libspectra-dev
  nlohmann-json3-dev libcli11-dev zlib1g-dev
  libcurl4-openssl-dev
  libjpeg62-turbo-dev libpng-dev libwebp-dev libgif-dev
  libcairo2-dev fonts-dejavu-core
  libgtest-dev libgmock-dev libbenchmark-dev
  libonig-dev libicu-dev
  clang libclang-rt-14-dev
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
