#!/usr/bin/env bash
# Installs a configured and built tree into a scratch prefix and checks it as another project
# would use it:
#   1. `cmake --install BUILD --prefix P` puts the CLI, libmmembed.so (with its SONAME), the
#      public headers, the CMake package and mmembed.pc under P;
#   2. one version number everywhere: the CLI's --version, the pkg-config file and the CMake
#      package version all say project(mmembed VERSION ...) of CMakeLists.txt;
#   3. examples/embed builds against P with find_package(mmembed) and with pkg-config, and both
#      programs run on the tiny BridgeTower checkpoint and print the same result;
#   4. removing the files of BUILD/install_manifest.txt leaves no file under P (the uninstall
#      the README describes).
#   scripts/check_install.sh [BUILD_DIR]   (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
src=$PWD
work=$(mktemp -d "${TMPDIR:-/tmp}/mmembed-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
fail() { echo "check_install: $*" >&2; exit 1; }

version=$(sed -n 's/^project(mmembed VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
[ -n "$version" ] || fail "no version in CMakeLists.txt's project()"
major_minor=${version%.*}

cmake --install "$build" --prefix "$prefix" >"$work/install.log"
libdir=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:PATH=//p' "$build/CMakeCache.txt")
libdir=${libdir:-lib}
for f in bin/mmembed "$libdir/libmmembed.so.$version" "$libdir/libmmembed.so.$major_minor" \
         "$libdir/libmmembed.so" include/mmembed/embedder.h include/mmembed/error.h \
         include/mmembed/version.h "$libdir/cmake/mmembed/mmembedConfig.cmake" \
         "$libdir/cmake/mmembed/mmembedConfigVersion.cmake" \
         "$libdir/cmake/mmembed/mmembedTargets.cmake" "$libdir/pkgconfig/mmembed.pc" \
         share/bash-completion/completions/mmembed share/zsh/site-functions/_mmembed \
         share/man/man1/mmembed.1 share/mmembed/toy-scenes/manifest.tsv \
         share/mmembed/images/cat_landscape.jpg; do
  [ -e "$prefix/$f" ] || fail "cmake --install did not install $f"
done
soname=$(readelf -d "$prefix/$libdir/libmmembed.so.$version" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
[ "$soname" = "libmmembed.so.$major_minor" ] ||
  fail "SONAME is '$soname', not libmmembed.so.$major_minor"
# Only the mmembed namespace is exported.
others=$(nm -D --defined-only -C "$prefix/$libdir/libmmembed.so" | awk '$2 != "A"' |
         grep -vc 'mmembed::' || true)
[ "$others" -eq 0 ] || fail "libmmembed.so exports $others symbols outside the mmembed namespace"

cli_version=$("$prefix/bin/mmembed" --version)
[ "$cli_version" = "mmembed $version" ] ||
  fail "installed CLI says '$cli_version', not 'mmembed $version'"
export PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig"
pc_version=$(pkg-config --modversion mmembed)
[ "$pc_version" = "$version" ] || fail "mmembed.pc says version '$pc_version', not '$version'"
files=$(find "$prefix" -type f | wc -l)
echo "check_install: installed mmembed $version into a scratch prefix ($files files)"

model=$src/tests/data/models/bridgetower-large-tiny
image=$src/tests/data/images/cat_landscape.jpg
# With the CMake package (find_package(mmembed 0.1) checks the version file too).
cmake -S examples/embed -B "$work/cmake-build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" >"$work/configure.log" ||
  { cat "$work/configure.log"; fail "configure failed"; }
cmake --build "$work/cmake-build" >"$work/build.log" ||
  { cat "$work/build.log"; fail "build failed"; }
out_cmake=$("$work/cmake-build/embed_example" "$model" "$image" "a cat lying on a laptop")
# With pkg-config.
# shellcheck disable=SC2046
g++ -std=c++20 -O2 examples/embed/main.cc $(pkg-config --cflags --libs mmembed) \
  -Wl,-rpath,"$(pkg-config --variable=libdir mmembed)" -o "$work/embed_example_pc"
out_pc=$("$work/embed_example_pc" "$model" "$image" "a cat lying on a laptop")
echo "$out_cmake" | sed 's/^/  cmake example: /'
echo "$out_pc" | sed 's/^/  pkg-config example: /'
grep -q "^mmembed $version, bridgetower model, [0-9]* dimensions$" <<<"$out_cmake" ||
  fail "the CMake-built example printed something else"
grep -q '^cosine(text, image) = -\?[01]\.[0-9]\{6\}$' <<<"$out_cmake" ||
  fail "the CMake-built example printed no cosine"
[ "$out_cmake" = "$out_pc" ] || fail "the two builds of the example disagree"
# Both programs load the installed library, not the build tree's.
want=$(readlink -f "$prefix/$libdir/libmmembed.so.$major_minor")
for exe in "$work/embed_example_pc" "$work/cmake-build/embed_example"; do
  got=$(ldd "$exe" | awk '$1 ~ /^libmmembed\.so/ { print $3 }')
  [ -n "$got" ] && [ "$(readlink -f "$got")" = "$want" ] ||
    fail "$(basename "$exe") loads libmmembed from '${got:-nowhere}', not from the prefix"
done

# Uninstall as the README says, from the manifest cmake --install wrote.
xargs -d '\n' rm -f -- <"$build/install_manifest.txt"
left=$(find "$prefix" -type f -o -type l)
[ -z "$left" ] || fail "files left after removing install_manifest.txt's: $left"
echo "check_install: both examples built and ran against the installed tree; uninstall left no file"
