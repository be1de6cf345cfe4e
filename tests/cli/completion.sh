#!/usr/bin/env bash
# The bash completion (contrib/orderflow.bash-completion) against the
# binary: _orderflow driven with COMP_WORDS and COMP_CWORD as bash sets
# them, the binary on PATH as "orderflow" (and once by its path, off
# PATH): commands, options of a command and of outbox's subcommands,
# file and folder names after --db and --dir, nothing after an option
# that takes another value.
set -u

of=${ORDERFLOW:-build/orderflow}
root=$(cd "$(dirname "$0")/../.." && pwd)
. "$(dirname "$0")/../lib.sh"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/orderflow-completion.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
name=setup

[ -x "$of" ] || fail "no binary at $of (run make first)"
case $of in
/*) ;;
*) of=$PWD/$of ;;
esac
mkdir -p "$tmp/bin" "$tmp/files/data.d" || fail "mkdir"
ln -s "$of" "$tmp/bin/orderflow" || fail "ln -s"
: >"$tmp/files/data.db"
: >"$tmp/files/data.txt"
PATH=$tmp/bin:$PATH
# shellcheck source=../../contrib/orderflow.bash-completion
. "$root/contrib/orderflow.bash-completion" ||
        fail "sourcing the completion failed"
complete -p orderflow >/dev/null || fail "no 'complete' for orderflow"

# complete WORD...: run _orderflow on the command line WORD... (the last
# word is the one completed, "" for a new word); the sorted replies, one a
# line, in $tmp/got.
complete_words() {
        COMP_WORDS=("$@")
        COMP_CWORD=$(($# - 1))
        COMP_LINE="$*"
        COMP_POINT=${#COMP_LINE}
        COMPREPLY=()
        _orderflow orderflow "${COMP_WORDS[COMP_CWORD]}" \
                "${COMP_WORDS[COMP_CWORD - 1]}"
        printf '%s\n' "${COMPREPLY[@]}" | sed '/^$/d' | sort >"$tmp/got"
}

# expect WANT WORD...: completing WORD... offers exactly WANT (words
# separated by spaces; "" for nothing).
expect() {
        local want=$1 line
        shift
        line="$*"
        name="'${line//$tmp/\$tmp}' completes to '${want//$tmp/\$tmp}'"
        complete_words "$@"
        printf '%s\n' $want | sed '/^$/d' | sort >"$tmp/want"
        diff -u "$tmp/want" "$tmp/got" >&2 ||
                fail "other replies (diff above: - expected)"
        ok
}

expect "project" orderflow pr
expect "place pay project" orderflow p
expect "--batch-max --batch-ms" orderflow project --ba
expect "list" orderflow outbox l
expect "--db --dead" orderflow outbox list --d
expect "--once" orderflow relay --o
expect "--nodes" orderflow broker --n
expect "--all-dead" orderflow outbox retry --a
expect "--older-than" orderflow outbox prune --o
expect "--version" orderflow --v
expect "--db" orderflow query --d
expect "" orderflow project --topic ""
expect "" orderflow project --batch-max 1
expect "--dedupe-retention" orderflow project --db x --de
expect "$tmp/files/data.d $tmp/files/data.db" \
        orderflow project --db "$tmp/files/data.d"
expect "$tmp/files/data.d $tmp/files/data.db $tmp/files/data.txt" \
        orderflow relay -F "$tmp/files/data"
expect "$tmp/files/data.d" orderflow demo --dir "$tmp/files/data"
expect "$tmp/files/data.db" orderflow status --db = "$tmp/files/data.db"

# Every command of bare orderflow's table, and nothing else.
"$of" | awk '/^commands:$/ { on = 1; next }
             on && /^$/ { exit }
             on && /^  [a-z]/ { print $1 }' >"$tmp/commands"
[ -s "$tmp/commands" ] || fail "bare orderflow printed no command table"
expect "$(tr '\n' ' ' <"$tmp/commands")" orderflow ""

# Every option `project --help` lists, for an empty word.
name="'orderflow project \"\"' offers each option of project --help"
complete_words orderflow project ""
"$of" project --help | sed -n '/^options:$/,/^$/p' |
        grep -oE -- '(^|[ ,])--?[A-Za-z0-9][A-Za-z0-9-]*' |
        sed 's/^[ ,]//' | sort -u >"$tmp/want"
[ -s "$tmp/want" ] || fail "no option in project --help"
diff -u "$tmp/want" "$tmp/got" >&2 || fail "other replies (diff above)"
ok

# The binary completed by its path, not on PATH.
PATH=${PATH#"$tmp/bin:"}
name="completion of '$of pr' runs that binary (not on PATH)"
! command -v orderflow >/dev/null || [ "$(command -v orderflow)" = "$of" ] ||
        echo "# another orderflow is on PATH: $(command -v orderflow)"
COMP_WORDS=("$of" pr)
COMP_CWORD=1
COMPREPLY=()
_orderflow
[ "${COMPREPLY[*]}" = project ] ||
        fail "expected 'project', got '${COMPREPLY[*]}'"
ok
