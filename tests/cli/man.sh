#!/usr/bin/env bash
# The manual pages (man/*.1, mdoc) against the binary:
# - every page lints without a warning: mandoc -Tlint -Wwarning, or
#   groff -ww -z -mandoc where mandoc is missing (MAN_LINT=groff forces
#   it); and renders (mandoc -Tutf8, else man -l, else groff -Tutf8);
# - its .Dt and NAME match its file name;
# - the options a page documents under OPTIONS are those its command's
#   --help lists (outbox: per subcommand, under ".Ss outbox SUB"), with
#   the same spelling and value name, and each range ("1 to 100000") and
#   default ("default 10000") that --help gives for an option appears in
#   the page's entry for it;
# - orderflow.1's command list (".It Cm NAME" under ".Ss Commands") is the
#   table bare `orderflow` prints, and every command has its page, every
#   page its command.
# A page's option entry is written ".It Fl b , Fl \-brokers Ar LIST" (or
# ".It Fl \-db Ar PATH", ".It Fl X Ar key=value"): read as
# "-b, --brokers LIST", as --help writes it.
# MAN_DIR checks the pages of another folder (to see the checks fail).
set -u

of=${ORDERFLOW:-build/orderflow}
root=$(cd "$(dirname "$0")/../.." && pwd)
man_dir=${MAN_DIR:-$root/man}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/orderflow-man.XXXXXX") || exit 1
. "$(dirname "$0")/../lib.sh"
trap 'rm -rf "$tmp"' EXIT
failed=0
name=setup

# A check's verdict: "ok - NAME", or "not ok - NAME: ..." and the script
# goes on to the next check (it exits 1 at the end).
fail() {
        echo "not ok - $name: $*" >&2
        failed=$((failed + 1))
}

# differ TEXT: one difference found, one line on stderr; counted in diffs.
differ() {
        echo "man.sh: $*" >&2
        diffs=$((diffs + 1))
}

# verdict: ok, or not ok with the number of differences found.
verdict() {
        if [ "$diffs" -eq 0 ]; then
                ok
        else
                fail "$diffs difference(s), each on a line above"
        fi
}

[ -x "$of" ] || { fail "no binary at $of (run make first)"; exit 1; }
[ -d "$man_dir" ] || { fail "no folder $man_dir"; exit 1; }
pages=("$man_dir"/*.1)
[ -e "${pages[0]}" ] || { fail "no page in $man_dir"; exit 1; }

# ---- lint and rendering

if command -v mandoc >/dev/null && [ "${MAN_LINT:-}" != groff ]; then
        linter="mandoc -Tlint -Wwarning"
else
        command -v groff >/dev/null ||
                { fail "neither mandoc nor groff is installed"; exit 1; }
        linter="groff -ww -z -mandoc"
fi
echo "# lint: $linter"

name="every page lints without a warning ($linter)"
diffs=0
for p in "${pages[@]}"; do
        # Both print nothing for a clean page; mandoc also exits 0.
        $linter "$p" >"$tmp/lint" 2>&1
        rc=$?
        [ "$rc" -eq 0 ] || [ -s "$tmp/lint" ] ||
                echo "$linter exited $rc" >"$tmp/lint"
        while IFS= read -r line; do
                differ "$(basename "$p"): $line"
        done <"$tmp/lint"
done
verdict

# render FILE: the page as a terminal shows it, on stdout.
render() {
        if command -v mandoc >/dev/null; then
                mandoc -Tutf8 "$1"
        elif command -v man >/dev/null; then
                MANWIDTH=80 man -l "$1"
        else
                groff -mandoc -Tutf8 "$1"
        fi
}

name="every page renders"
diffs=0
for p in "${pages[@]}"; do
        render "$p" >"$tmp/raw" 2>"$tmp/render.err"
        rc=$?
        # (no overstrikes, so that headings read as text)
        sed 's/.\x08//g' "$tmp/raw" >"$tmp/page"
        if [ "$rc" -ne 0 ]; then
                differ "$(basename "$p") does not render:" \
                        "$(head -1 "$tmp/render.err")"
        elif [ -s "$tmp/render.err" ]; then
                differ "$(basename "$p"): $(head -1 "$tmp/render.err")"
        elif ! grep -q '^SYNOPSIS' "$tmp/page" ||
                ! grep -q '^OPTIONS' "$tmp/page"; then
                differ "$(basename "$p") renders without SYNOPSIS or OPTIONS"
        fi
done
verdict

name="each page's .Dt and NAME match its file name"
diffs=0
for p in "${pages[@]}"; do
        base=$(basename "$p" .1)
        dt=$(sed -n 's/^\.Dt //p' "$p")
        want=$(echo "$base" | tr '[:lower:]' '[:upper:]')
        [ "$dt" = "$want 1" ] ||
                differ "$base.1 has .Dt '$dt', not '$want 1'"
        nm=$(sed -n '/^\.Sh NAME/,/^\.Sh/s/^\.Nm //p' "$p")
        [ "$nm" = "$base" ] || differ "$base.1 names itself '$nm' in NAME"
done
verdict

# ---- options

# help_options CMD...: the options `orderflow CMD... --help` lists, one a
# line: the entry as written ("-b, --brokers LIST"), a tab, its text.
help_options() {
        "$of" "$@" --help 2>&1 | awk '
                function flush() {
                        if (entry != "") print entry "\t" text
                        entry = ""
                }
                /^options:$/ { on = 1; next }
                !on { next }
                /^$/ { flush(); exit }
                /^  -[A-Za-z0-9]/ || /^      --/ {
                        flush()
                        line = $0
                        sub(/^ +/, "", line)
                        entry = line
                        sub(/  .*/, "", entry)
                        text = substr(line, length(entry) + 1)
                        next
                }
                { text = text " " $0 }
                END { flush() }'
}

# page_options PAGE [SUB]: the options PAGE documents, in the same form:
# the ".It" entries at the top level of the lists under ".Sh OPTIONS"
# (with SUB, only under ".Ss outbox SUB" there), each with the source
# lines of its text joined.
page_options() {
        awk -v sub_cmd="${2:-}" '
                function flush() {
                        if (entry != "") print entry "\t" text
                        entry = ""
                }
                # ".It Fl b , Fl \-brokers Ar LIST" -> "-b, --brokers LIST"
                function item(s,    n, w, i, out, t, fl, glue) {
                        n = split(s, w, " ")
                        out = ""
                        for (i = 2; i <= n; i++) {
                                t = w[i]
                                if (t ~ /^[A-Z][a-z][a-z]?$/) {
                                        fl = (t == "Fl")
                                        if (t == "Ns") glue = 1
                                        continue
                                }
                                gsub(/\\-/, "-", t)
                                if (t == ",") {
                                        out = out t
                                        continue
                                }
                                if (fl) t = "-" t
                                out = out (out == "" || glue ? "" : " ") t
                                glue = 0
                        }
                        return out
                }
                /^\.Sh / { flush(); sh = ($0 == ".Sh OPTIONS"); depth = 0 }
                /^\.Ss / && sh {
                        flush()
                        ss = $0
                        sub(/^\.Ss /, "", ss)
                }
                !sh { next }
                sub_cmd != "" && ss != "outbox " sub_cmd { next }
                /^\.Bl/ { depth++ }
                /^\.El/ { if (--depth == 0) flush(); next }
                /^\.It/ && depth == 1 {
                        flush()
                        entry = item($0)
                        text = ""
                        next
                }
                entry != "" { text = text " " $0 }
                END { flush() }' "$1"
}

# key ENTRY: the name an option goes by: its long name when it has one
# ("-b, --brokers LIST" -> --brokers), else its short one (-X).
key() {
        local w k=
        for w in $1; do
                w=${w%,}
                case $w in -*) k=$w ;; esac
        done
        echo "$k"
}

# facts TEXT: the ranges ("1 to 100000", "1s to 3650d") and default
# values ("default 10000" -> 10000) in an option's --help text, one a line.
facts() {
        echo "$1" | grep -oE '[0-9][0-9a-z.]* to [0-9][0-9a-z.]*' |
                sed 's/[.]$//'
        echo "$1" | grep -oE 'default [^ ;)]+' |
                sed 's/^default //; s/[.,:]$//'
}

# compare PAGE CMD...: the options of `orderflow CMD... --help` against
# those PAGE documents (for `outbox SUB`, under ".Ss outbox SUB").
compare() {
        local page=$1 base e k sub= where
        shift
        base=$(basename "$page")
        [ "$1" = outbox ] && sub=${2:-}
        where=${sub:+ under .Ss outbox $sub}
        help_options "$@" >"$tmp/help.tsv"
        page_options "$page" $sub >"$tmp/page.tsv"
        [ -s "$tmp/help.tsv" ] ||
                differ "orderflow $* --help lists no option"
        [ -s "$tmp/page.tsv" ] ||
                differ "$base documents no option$where"
        while IFS=$'\t' read -r e _; do
                k=$(key "$e")
                cut -f1 "$tmp/page.tsv" | while IFS= read -r pe; do
                        [ "$(key "$pe")" = "$k" ] && echo "$pe"
                done >"$tmp/match"
                if [ ! -s "$tmp/match" ]; then
                        differ "$base lacks $k${sub:+ (outbox $sub)}"
                elif [ "$(head -1 "$tmp/match")" != "$e" ]; then
                        differ "$base writes '$(head -1 "$tmp/match")'" \
                                "where orderflow $* --help has '$e'"
                fi
        done <"$tmp/help.tsv"
        while IFS=$'\t' read -r e _; do
                k=$(key "$e")
                cut -f1 "$tmp/help.tsv" | while IFS= read -r he; do
                        [ "$(key "$he")" = "$k" ] && echo "$he"
                done | grep -q . ||
                        differ "$base documents $k that orderflow $* --help" \
                                "does not list"
        done <"$tmp/page.tsv"
        compare_facts "$base" "$*"
}

# compare_facts BASE CMD: each range and default of each option of the
# --help in $tmp/help.tsv is in the page's text for that option.
compare_facts() {
        local e text k pe ptext f
        while IFS=$'\t' read -r e text; do
                k=$(key "$e")
                ptext=
                while IFS=$'\t' read -r pe pt; do
                        [ "$(key "$pe")" = "$k" ] && ptext=$pt
                done <"$tmp/page.tsv"
                [ -n "$ptext" ] || continue
                facts "$text" | while IFS= read -r f; do
                        echo "$ptext" | grep -qwF -- "$f" ||
                                echo "$1: $k: orderflow $2 --help says '$f'," \
                                        "the page does not"
                done
        done <"$tmp/help.tsv" >"$tmp/facts"
        while IFS= read -r line; do
                differ "$line"
        done <"$tmp/facts"
}

# The commands of bare `orderflow`'s table, one a line.
commands() {
        "$of" | awk '/^commands:$/ { on = 1; next }
                     on && /^$/ { exit }
                     on && /^  [a-z]/ { print $1 }'
}
commands >"$tmp/commands"
if [ ! -s "$tmp/commands" ]; then
        fail "bare orderflow printed no command table"
        exit 1
fi

# The subcommands of outbox, from its usage line
# ("usage: orderflow outbox status|retry|prune ...").
"$of" outbox --help | sed -n 's/^usage: orderflow outbox \([a-z|]*\) .*/\1/p' |
        tr '|' '\n' >"$tmp/outbox_subs"

name="each command's page documents the options its --help lists"
diffs=0
while IFS= read -r c; do
        page=$man_dir/orderflow-$c.1
        [ -f "$page" ] || continue # the command list check says so
        if [ "$c" = outbox ]; then
                [ -s "$tmp/outbox_subs" ] ||
                        differ "no subcommand in orderflow outbox's usage line"
                while IFS= read -r s; do
                        grep -qx "\.Ss outbox $s" "$page" ||
                                differ "orderflow-outbox.1 has no" \
                                        "'.Ss outbox $s' under OPTIONS"
                        compare "$page" outbox "$s"
                done <"$tmp/outbox_subs"
                sed -n '/^\.Sh OPTIONS/,/^\.Sh/s/^\.Ss outbox //p' "$page" |
                        while IFS= read -r s; do
                                grep -qx "$s" "$tmp/outbox_subs" ||
                                        echo "orderflow-outbox.1 documents" \
                                                "outbox $s, which orderflow" \
                                                "outbox --help does not list"
                        done >"$tmp/extra"
                while IFS= read -r line; do differ "$line"; done <"$tmp/extra"
        else
                compare "$page" "$c"
        fi
done <"$tmp/commands"
verdict

# orderflow.1's options: `orderflow --help` has no options section, so
# each option it names must be on the page, and each the page documents
# must work (exit 0, something on stdout).
name="orderflow.1 documents the options orderflow --help names"
diffs=0
page=$man_dir/orderflow.1
if [ ! -f "$page" ]; then
        differ "there is no orderflow.1"
else
        page_options "$page" | cut -f1 >"$tmp/top.page"
        "$of" --help | grep -oE "(^|[ '(\[])(-[A-Za-z]|--[a-z][a-z-]*)" |
                sed "s/^[ '(\[]//" | sort -u >"$tmp/top.help"
        while IFS= read -r f; do
                grep -qwe "$f" "$tmp/top.page" ||
                        differ "orderflow.1 lacks $f"
        done <"$tmp/top.help"
        for f in $(tr -d , <"$tmp/top.page" | grep -oE -- '-[-A-Za-z]+'); do
                if ! "$of" "$f" >"$tmp/out" 2>"$tmp/err" || [ ! -s "$tmp/out" ]
                then
                        differ "orderflow.1 documents $f, but 'orderflow $f'" \
                                "fails: $(head -1 "$tmp/err")"
                fi
        done
fi
verdict

# ---- commands

name="orderflow.1 lists the commands bare orderflow prints, each has a page"
diffs=0
if [ -f "$page" ]; then
        sed -n '/^\.Ss Commands$/,/^\.S[sh] /s/^\.It Cm \([a-z-]*\)$/\1/p' \
                "$page" >"$tmp/listed"
        while IFS= read -r c; do
                grep -qx -- "$c" "$tmp/listed" ||
                        differ "orderflow.1 lacks the command $c"
                grep -q "^\.Xr orderflow-$c 1" "$page" ||
                        differ "orderflow.1 has no .Xr orderflow-$c 1"
                [ -f "$man_dir/orderflow-$c.1" ] ||
                        differ "the command $c has no page orderflow-$c.1"
        done <"$tmp/commands"
        while IFS= read -r c; do
                grep -qx -- "$c" "$tmp/commands" ||
                        differ "orderflow.1 lists $c, which bare orderflow" \
                                "does not"
        done <"$tmp/listed"
fi
for p in "$man_dir"/orderflow-*.1; do
        [ -e "$p" ] || continue
        c=$(basename "$p" .1)
        c=${c#orderflow-}
        grep -qx -- "$c" "$tmp/commands" ||
                differ "$(basename "$p") is the page of $c, which bare" \
                        "orderflow does not list"
done
verdict

[ "$failed" -eq 0 ]
