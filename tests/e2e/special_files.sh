#!/bin/bash
# Every file-reading entry point of the CLI fed each kind of special file (issue #18, item 4):
# a FIFO with no writer, a symlink to a FIFO, /dev/zero, a directory and a 6 GiB sparse file.
# Each must end at once with exit code 1 and one message naming the path and what it is.
# Each run is under `timeout` (a hang fails in seconds, not at ctest's TIMEOUT) and under an
# address-space limit (reading /dev/zero or the sparse file whole fails instead of taking the
# machine's memory).
#   special_files.sh MMEMBED DATA_DIR files|configs [AS_LIMIT]
# AS_LIMIT: prlimit's --as in bytes (default 4 GiB); "none" for a sanitizer build, which
# reserves terabytes of address space at start (its test bounds memory with ASAN_OPTIONS
# hard_rss_limit_mb instead).
# `configs`: model folders whose config.json asks for far more layers than the checkpoint holds
# (issue #18, item 5) must be refused before anything is allocated for those layers.
set -u
MM=$1
DATA=$(cd "$2" && pwd)
SECTION=$3
AS_LIMIT=${4:-$((4 << 30))}
limit() {
  if [ "$AS_LIMIT" = none ]; then "$@"; else prlimit --as="$AS_LIMIT" "$@"; fi
}
T=$(mktemp -d "${TMPDIR:-/tmp}/mmembed-special.XXXXXX")
trap 'rm -rf "$T"' EXIT
fails=0

# run NAME EXPECTED_RC ERR_REGEX ARGS...: the run's exit code must be EXPECTED_RC and its
# stderr must match ERR_REGEX (extended regex).
run() {
  local name=$1 want_rc=$2 regex=$3
  shift 3
  local err rc
  err=$(limit timeout 30 "$MM" --threads 1 "$@" 2>&1 >/dev/null)
  rc=$?
  if [ "$rc" != "$want_rc" ]; then
    echo "FAIL $name: exit code $rc, expected $want_rc (124: hung; 134/137: memory)"
    echo "  stderr: ${err:0:400}"
    fails=$((fails + 1))
  elif ! grep -Eq -- "$regex" <<<"$err"; then
    echo "FAIL $name: stderr does not match '$regex'"
    echo "  stderr: ${err:0:400}"
    fails=$((fails + 1))
  else
    echo "ok   $name"
  fi
}

mkfifo "$T/fifo" "$T/fifo.png" "$T/fifo.csv" "$T/fifo.npy" "$T/fifo.tsv" "$T/fifo.txt"
ln -s "$T/fifo" "$T/link_to_fifo"
ln -s /dev/zero "$T/zero.npy"
ln -s /dev/zero "$T/zero.csv"
# A PNG signature, then nothing but a hole up to 6 GiB.
printf '\x89PNG\r\n\x1a\n' >"$T/sparse.png"
truncate -s 6G "$T/sparse.png"
mkdir "$T/folder.png"

CLIP=$DATA/models/clip-tiny-gelu
MINILM=$DATA/models/minilm-tiny-st
BT=$DATA/models/bridgetower-large-tiny
CAT=$DATA/images/cat_landscape.jpg
AN=$DATA/analysis/inputs

if [ "$SECTION" = configs ]; then
  # model_with_layers SOURCE_DIR N: a copy whose config.json sets every num_hidden_layers to N.
  model_with_layers() {
    local dir="$T/layers-$(basename "$1")-$2"
    mkdir -p "$dir"
    cp -rs "$1/." "$dir/"
    rm -f "$dir/config.json"
    sed -E "s/(\"num_hidden_layers\": *)[0-9]+/\1$2/g" "$1/config.json" >"$dir/config.json"
    echo "$dir"
  }
  for n in 100000 1000000 1000000000000; do
    run "bert_layers_$n" 1 "config\.json: num_hidden_layers is $n, but .* has only [0-9]+ tensors" \
      embed --model "$(model_with_layers "$MINILM" $n)" --text "a cat"
    run "clip_layers_$n" 1 "config\.json: (text|vision)_config\.num_hidden_layers is $n, but" \
      embed --model "$(model_with_layers "$CLIP" $n)" --text "a cat"
    run "bridgetower_layers_$n" 1 "config\.json: [a-z_.]*num_hidden_layers is $n, but" \
      embed --model "$(model_with_layers "$BT" $n)" --text "a cat"
  done
  echo "$fails failure(s)"
  [ "$fails" = 0 ]
  exit
fi

# Images.
run image_fifo 1 "fifo\.png: is a FIFO, expected a regular file" \
  embed --model "$CLIP" --image "$T/fifo.png"
run image_link_to_fifo 1 "link_to_fifo: is a FIFO" embed --model "$CLIP" --image "$T/link_to_fifo"
run image_dev_zero 1 "/dev/zero: is a character device" embed --model "$CLIP" --image /dev/zero
run image_directory 1 "folder\.png: is a directory" embed --model "$CLIP" --image "$T/folder.png"
# Standard input as a dataset: an endless one (/dev/zero) is cut off at its limit.
err=$(limit timeout 60 "$MM" --threads 1 embed --model "$MINILM" --input - -o "$T/stdin_out" \
      </dev/zero 2>&1 >/dev/null)
rc=$?
if [ "$rc" = 1 ] && grep -q "standard input: more than 268435456 bytes" <<<"$err"; then
  echo "ok   stdin_dev_zero"
else
  echo "FAIL stdin_dev_zero: exit code $rc (124: hung; 134/137: memory); stderr: ${err:0:400}"
  fails=$((fails + 1))
fi
run image_sparse_6g 1 "sparse\.png: file is 6442450944 bytes, more than the 256 MiB limit" \
  embed --model "$CLIP" --image "$T/sparse.png"
run classify_image_fifo 1 "fifo\.png: is a FIFO" \
  classify --model "$CLIP" --image "$T/fifo.png" --labels "a,b"

# A path with an escape sequence and a C1 control (U+0085, valid UTF-8): quoted escaped, the
# raw bytes never reach the terminal.
evil=$'\e[2Jevil\xc2\x85.png'
run image_name_escaped 1 'x1b\[2Jevil\\xc2\\x85\.png: cannot open' \
  embed --model "$CLIP" --image "$T/$evil"
if limit timeout 30 "$MM" embed --model "$CLIP" --image "$T/$evil" 2>&1 |
    LC_ALL=C grep -q $'\x1b\|\xc2\x85'; then
  echo "FAIL image_name_escaped: raw control bytes on stderr"
  fails=$((fails + 1))
fi

# A real image whose name is not UTF-8 is embedded; the JSONL writes U+FFFD for the bad byte
# (JsonOutputs.InvalidUtf8IsWrittenAsReplacementCharacter checks the line).
cp "$CAT" "$T/cat"$'\xff'".jpg"
run image_name_not_utf8_jsonl 0 "" \
  embed --model "$CLIP" --image "$T/cat"$'\xff'".jpg"

# Checkpoints.
run inspect_fifo 1 "fifo: is a FIFO" inspect "$T/fifo"
run inspect_dev_zero 1 "/dev/zero: is a character device" inspect /dev/zero

# Model folders with one file replaced by a FIFO (the others are links to the real ones).
model_with_fifo() {  # SOURCE_DIR FILE -> prints the new folder
  local src=$1 file=$2 dir
  dir="$T/model-$(basename "$src")-$(tr '/' '_' <<<"$file")"
  mkdir -p "$dir"
  cp -rs "$src/." "$dir/"
  rm -f "$dir/$file"
  mkfifo "$dir/$file"
  echo "$dir"
}
for f in config.json tokenizer.json preprocessor_config.json model.safetensors \
         tokenizer_config.json special_tokens_map.json; do
  d=$(model_with_fifo "$CLIP" "$f")
  run "clip_${f}_fifo" 1 "$(sed 's/\./\\./g' <<<"$f"): is a FIFO" \
    embed --model "$d" --text "a cat" --image "$CAT"
done
for f in modules.json config.json 1_Pooling/config.json sentence_bert_config.json vocab.txt; do
  d=$(model_with_fifo "$MINILM" "$f")
  rm -f "$d/tokenizer.json"  # so that vocab.txt is read
  run "minilm_$(tr '/' '_' <<<"$f")_fifo" 1 "$(sed 's/\./\\./g' <<<"$f"): is a FIFO" \
    embed --model "$d" --text "a cat"
done

# Matrices, labels, CSVs for plot.
run similarity_npy_fifo 1 "fifo\.npy: is a FIFO" similarity "$T/fifo.npy"
run similarity_csv_fifo 1 "fifo\.csv: is a FIFO" similarity "$T/fifo.csv"
run similarity_npy_dev_zero 1 "zero\.npy: is a character device" similarity "$T/zero.npy"
run similarity_csv_dev_zero 1 "zero\.csv: is a character device" similarity "$T/zero.csv"
run reduce_labels_fifo 1 "fifo\.txt: is a FIFO" \
  reduce "$AN/clusters.npy" --labels "$T/fifo.txt" -o "$T/out.csv"
run reduce_labels_directory 1 ": is a directory" \
  reduce "$AN/clusters.npy" --labels "$T" -o "$T/out.csv"
run plot_csv_fifo 1 "fifo\.csv: is a FIFO" plot "$T/fifo.csv" -o "$T/plot.png"

# Manifests: the manifest itself, and one bad line among good ones (fails alone).
run manifest_fifo 1 "fifo\.tsv: is a FIFO" \
  embed --model "$CLIP" --input "$T/fifo.tsv" --kind image -o "$T/job0"
printf 'id\timage\ttext\nok\t%s\ta cat\npipe\t%s\tx\nzero\t/dev/zero\ty\nhole\t%s\tz\n' \
  "$CAT" "$T/fifo.png" "$T/sparse.png" >"$T/manifest.tsv"
run manifest_bad_lines_fail_alone 1 "embedded 1 of 4 items \(3 failed\)" \
  embed --model "$CLIP" --input "$T/manifest.tsv" --kind image -o "$T/job1"
for want in '"id":"pipe".*is a FIFO' '"id":"zero".*is a character device' \
            '"id":"hole".*more than the 256 MiB limit'; do
  if grep -Eq "$want" "$T/job1/errors.jsonl" 2>/dev/null; then
    echo "ok   errors.jsonl has $want"
  else
    echo "FAIL errors.jsonl lacks $want"
    fails=$((fails + 1))
  fi
done

# The Hugging Face cache: `models import` refuses special files and links leading out of the
# folder before it writes anything; `models list` reports a FIFO where a ref should be (no hang).
import_with() {  # NAME -> prints a copy of the tiny MiniLM folder
  local dir="$T/import-$1"
  mkdir -p "$dir"
  cp -r "$MINILM/." "$dir/"
  echo "$dir"
}
d=$(import_with fifo); mkfifo "$d/pipe"
run models_import_fifo 1 "pipe: is a FIFO; only regular files" \
  models import "$d" --as org/x --cache-dir "$T/hf"
d=$(import_with link_to_fifo); ln -s "$T/fifo" "$d/tokenizer.json.lnk"
run models_import_link_out 1 "tokenizer\.json\.lnk: a symbolic link to .*fifo, outside" \
  models import "$d" --as org/x --cache-dir "$T/hf"
d=$(import_with dev_zero); ln -s /dev/zero "$d/zero.bin"
run models_import_dev_zero 1 "zero\.bin: a symbolic link to /dev/zero, outside" \
  models import "$d" --as org/x --cache-dir "$T/hf"
run models_import_dev_folder 1 "/dev/[^:]*: (is a (character device|block device|FIFO|socket)|a symbolic link)" \
  models import /dev --as org/x --cache-dir "$T/hf"
if [ -e "$T/hf" ]; then
  echo "FAIL models_import_*: a refused import wrote into the cache"
  fails=$((fails + 1))
fi
run models_import_ok 0 "" models import "$MINILM" --as org/x --cache-dir "$T/hf"
mkfifo "$T/hf/models--org--x/refs/pipe"
run models_list_fifo_ref 0 "Cannot read ref .*pipe: is a FIFO" models list --cache-dir "$T/hf"

echo "$fails failure(s)"
[ "$fails" = 0 ]
