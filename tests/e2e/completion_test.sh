#!/usr/bin/env bash
# The generated shell completion and man page (apps/cli/cmd_completion.cc), as installed from
# BUILD/share: bash completes commands, options (of the command and the global ones, also after
# the command), option values from their choices, and nested commands; zsh parses its script;
# groff formats the man page without a warning, and the page has every command.
#   tests/e2e/completion_test.sh MMEMBED SHARE_DIR
set -euo pipefail
mmembed=$1
share=$2
fail() { echo "completion_test: $*" >&2; exit 1; }

source "$share/bash-completion/completions/mmembed"
complete_words() {
  COMP_WORDS=("$@")
  COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
  COMPREPLY=()
  _mmembed
  echo "${COMPREPLY[*]}"
}
expect() {
  local want=$1
  shift
  local got
  got=$(complete_words "$@")
  [[ "$got" == "$want" ]] || fail "'$*' completes to '$got', expected '$want'"
}
expect "reduce" mmembed red
expect "--n-neighbors" mmembed reduce --n-
expect "pca umap tsne" mmembed reduce x.npy --method ''
expect "pair text image" mmembed --threads 2 embed --kind ''
expect "import list" mmembed models ''
expect "pil torchvision" mmembed embed --image-backend ''
expect "--threads" mmembed reduce --method umap --thr
expect "bash zsh" mmembed completion ''
# A value that takes a file completes files: here none start with this.
expect "" mmembed embed --model /nonexistent-prefix-
# Every command is offered at the top.
all=$(complete_words mmembed '')
for cmd in inspect similarity reduce embed match classify plot demo fetch models completion manpage; do
  [[ " $all " == *" $cmd "* ]] || fail "'mmembed <TAB>' does not offer $cmd (got: $all)"
done

if command -v zsh >/dev/null; then
  zsh -n "$share/zsh/site-functions/_mmembed" || fail "zsh cannot parse _mmembed"
  for cmd in embed reduce models_import; do
    grep -q "^_mmembed_cmd_$cmd() {" "$share/zsh/site-functions/_mmembed" ||
      fail "_mmembed has no function for $cmd"
  done
else
  echo "completion_test: zsh not installed, its script was not parsed"
fi

man=$share/man/man1/mmembed.1
for cmd in inspect similarity reduce embed match classify plot demo fetch "models import" \
           "models list" completion manpage; do
  grep -q "^\.SS \"mmembed $cmd" "$man" || fail "the man page has no section for '$cmd'"
done
if command -v groff >/dev/null; then
  warnings=$(groff -man -Tutf8 -ww -z "$man" 2>&1)
  [[ -z "$warnings" ]] || fail "groff warns about the man page: $warnings"
  text=$(groff -man -Tutf8 "$man" 2>/dev/null | sed 's/.\x08//g')
  [[ "$text" == *"--n-neighbors"* ]] || fail "the formatted man page lacks --n-neighbors"
else
  echo "completion_test: groff not installed, the man page was not formatted"
fi
# The build's copies are what the binary prints now.
diff <("$mmembed" completion bash) "$share/bash-completion/completions/mmembed" >/dev/null ||
  fail "the generated bash completion is stale"
echo "completion_test: ok"
