#!/usr/bin/env bash
# The packaging check (make check-install): for PREFIX=/usr, then
# PREFIX=/usr/local, `make install` into a scratch DESTDIR that already
# holds a few files of other packages, then:
# - the installed files are exactly the expected ones, with modes 755 (the
#   binary) and 644 (the rest); the tree is printed;
# - the installed binary runs (--version);
# - every installed man page renders, and man finds orderflow-project in
#   the installed MANDIR;
# - the units' ExecStart= run PREFIX/bin/orderflow, every PREFIX path their
#   comments name is installed, and no @NAME@ is left in any text file;
# - systemd-analyze verify (and security --offline: exposure at most 2.0)
#   on the installed units, with --root=DESTDIR so that ExecStart= is
#   looked up there; systemd-sysusers --dry-run --root=DESTDIR reads the
#   sysusers file and would create the user orderflow;
# - `make uninstall` leaves the other packages' files and nothing else.
# A tool that is missing makes its check print "ok - ... # SKIP", never
# pass silently. B: the build folder (default build).
set -u

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
B=${B:-build}
MAKE=${MAKE:-make}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/orderflow-install.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
failed=0
name=setup

ok() { echo "ok - $name"; }

# A check's verdict: "not ok - NAME: ..." and the script goes on (it exits
# 1 at the end).
fail() {
        echo "not ok - $name: $*" >&2
        failed=$((failed + 1))
}

# skip WHY: the check $name cannot run here, said on stdout.
skip() { echo "ok - $name # SKIP: $*"; }

# files DIR: the files and links under DIR, "MODE PATH" (PATH from DIR's
# root, with a leading /), sorted.
files() {
        (cd "$1" && find . \( -type f -o -type l \) -printf '%m /%P\n') |
                sort -k2
}

# expected PREFIX: the files install must write, "MODE PATH", sorted.
expected() {
        local p=$1 f
        {
                echo "755 $p/bin/orderflow"
                for f in man/*.1; do
                        [ -e "$f" ] && echo "644 $p/share/man/man1/${f#man/}"
                done
                echo "644 $p/share/doc/orderflow/README.md"
                for f in docs/*.md; do
                        [ -e "$f" ] && echo "644 $p/share/doc/orderflow/$f"
                done
                for f in projector.env relay.env kafka.properties; do
                        echo "644 $p/share/doc/orderflow/examples/$f.example"
                done
                echo "644 $p/lib/systemd/system/orderflow-projector@.service"
                echo "644 $p/lib/systemd/system/orderflow-relay@.service"
                echo "644 $p/lib/sysusers.d/orderflow.conf"
                echo "644 $p/share/bash-completion/completions/orderflow"
        } | sort -k2
}

# render PAGE: the page as text on stdout (mandoc, else man -l).
render() {
        if command -v mandoc >/dev/null; then
                mandoc -Tutf8 "$1"
        else
                MANWIDTH=80 man -l "$1"
        fi
}

# check_prefix PREFIX: install, check, uninstall with that PREFIX.
check_prefix() {
        local p=$1 dest=$tmp/dest${1//\//-} f u out units rc
        echo "# ---- PREFIX=$p DESTDIR=$dest"
        # Files of other packages, in the folders install shares.
        mkdir -p "$dest$p/bin" "$dest$p/share/man/man1" \
                "$dest$p/share/doc/other" "$dest$p/lib/systemd/system"
        for f in bin/other share/man/man1/other.1 share/doc/other/README \
                lib/systemd/system/other.service; do
                echo other >"$dest$p/$f"
        done
        files "$dest" >"$tmp/others"

        name="make install PREFIX=$p DESTDIR=..."
        $MAKE -s B="$B" PREFIX="$p" DESTDIR="$dest" install \
                >"$tmp/make.out" 2>&1
        rc=$?
        if [ "$rc" -ne 0 ]; then
                fail "exit $rc: $(tail -5 "$tmp/make.out")"
                return
        fi
        ok

        name="PREFIX=$p: the installed files and their modes"
        files "$dest" | grep -vxF -f "$tmp/others" >"$tmp/got"
        sed 's/^/#   /' "$tmp/got"
        expected "$p" >"$tmp/want"
        if diff -u "$tmp/want" "$tmp/got" >"$tmp/diff"; then
                ok
        else
                fail "other files (- expected, + installed):"
                cat "$tmp/diff" >&2
        fi

        name="PREFIX=$p: the installed binary runs (--version)"
        out=$("$dest$p/bin/orderflow" --version 2>&1)
        rc=$?
        if [ "$rc" -ne 0 ]; then
                fail "exit $rc: $out"
        elif [ "${out#orderflow }" = "$out" ]; then
                fail "expected 'orderflow ' first, got: $out"
        else
                echo "#   ${out%%$'\n'*}"
                ok
        fi

        name="PREFIX=$p: every installed man page renders"
        u=0
        for f in "$dest$p"/share/man/man1/orderflow*.1; do
                [ -e "$f" ] || { fail "no page installed"; u=1; break; }
                if ! render "$f" >"$tmp/page" 2>"$tmp/page.err" ||
                        [ -s "$tmp/page.err" ] || [ ! -s "$tmp/page" ]; then
                        fail "$(basename "$f"): $(head -1 "$tmp/page.err")"
                        u=1
                fi
        done
        [ "$u" -eq 0 ] && ok

        name="PREFIX=$p: man finds orderflow-project in the installed MANDIR"
        if ! command -v man >/dev/null; then
                skip "no man (man-db)"
        elif ! [ -e man/orderflow-project.1 ]; then
                skip "no man/orderflow-project.1 in the tree"
        elif ! out=$(MANPATH=$dest$p/share/man man -w orderflow-project \
                2>&1); then
                fail "man -w: $out"
        elif [ "$out" != "$dest$p/share/man/man1/orderflow-project.1" ]; then
                fail "man -w found $out"
        else
                ok
        fi

        units=("$dest$p"/lib/systemd/system/orderflow-*@.service)
        name="PREFIX=$p: the units' ExecStart= run $p/bin/orderflow"
        u=0
        for f in "${units[@]}"; do
                if ! grep -q "^ExecStart=$p/bin/orderflow " "$f" ||
                        grep '^ExecStart=' "$f" |
                        grep -qv "^ExecStart=$p/bin/orderflow "; then
                        fail "$(basename "$f"): $(grep '^ExecStart=' "$f")"
                        u=1
                fi
        done
        [ "$u" -eq 0 ] && ok

        name="PREFIX=$p: each $p path the units name is installed"
        u=0
        for f in $(grep -ohE "$p/[A-Za-z0-9_./@-]*[A-Za-z0-9_]" \
                "${units[@]}" | sort -u); do
                [ -e "$dest$f" ] || { fail "$f is not installed"; u=1; }
        done
        [ "$u" -eq 0 ] && ok

        name="PREFIX=$p: no @NAME@ left in an installed text file"
        if grep -rlIE '@[A-Z_]+@' "$dest" >"$tmp/left"; then
                fail "in $(sed "s|^$dest||" "$tmp/left" | tr '\n' ' ')"
        else
                ok
        fi

        name="PREFIX=$p: systemd-analyze verify --root=DESTDIR on the units"
        if ! command -v systemd-analyze >/dev/null; then
                skip "no systemd-analyze (Debian: package systemd)"
        # --root: units, drop-ins and ExecStart= binaries are looked up
        # under DESTDIR; --recursive-errors=no: the units their Wants= and
        # After= name (network-online.target, sysinit.target) are not
        # there, and are not ours to check.
        elif (cd "$dest" && systemd-analyze verify --root="$dest" \
                --recursive-errors=no "${units[@]#"$dest"/}") \
                >"$tmp/verify" 2>&1 && [ ! -s "$tmp/verify" ]; then
                ok
        else
                fail "it said:"
                sed 's/^/#   /' "$tmp/verify" >&2
        fi

        name="PREFIX=$p: systemd-analyze security --offline: exposure <= 2.0"
        if ! command -v systemd-analyze >/dev/null; then
                skip "no systemd-analyze (Debian: package systemd)"
        elif ! systemd-analyze security --help 2>&1 | grep -q -- --offline
        then
                skip "this systemd-analyze has no security --offline"
        else
                u=0
                for f in "${units[@]}"; do
                        systemd-analyze security --offline=yes \
                                --root="$dest" --threshold=20 \
                                "${f#"$dest"/}" >"$tmp/sec" 2>&1 || u=1
                        grep -h 'Overall exposure' "$tmp/sec" |
                                sed 's/^.*exposure level for /#   /'
                done
                [ "$u" -eq 0 ] && ok || fail "exposure above 2.0 (above)"
        fi

        name="PREFIX=$p: systemd-sysusers --dry-run --root=DESTDIR"
        if ! command -v systemd-sysusers >/dev/null; then
                skip "no systemd-sysusers (Debian: package systemd)"
        elif ! systemd-sysusers --dry-run --root="$dest" >"$tmp/sysusers" \
                2>&1; then
                fail "it failed: $(cat "$tmp/sysusers")"
        elif ! grep -q "Creating user 'orderflow'" "$tmp/sysusers"; then
                fail "it would not create the user orderflow:" \
                        "$(cat "$tmp/sysusers")"
        else
                grep -h '^Creating' "$tmp/sysusers" | sed 's/^/#   /'
                ok
        fi

        name="PREFIX=$p: make uninstall leaves the others' files, no more"
        $MAKE -s B="$B" PREFIX="$p" DESTDIR="$dest" uninstall \
                >"$tmp/make.out" 2>&1
        rc=$?
        if [ "$rc" -ne 0 ]; then
                fail "exit $rc: $(tail -5 "$tmp/make.out")"
        elif ! files "$dest" | diff -u "$tmp/others" - >"$tmp/diff"; then
                fail "left or removed (- before install, + after):"
                cat "$tmp/diff" >&2
        elif [ -e "$dest$p/share/doc/orderflow" ]; then
                fail "$p/share/doc/orderflow is still there"
        else
                ok
        fi
}

if [ ! -x "$B/orderflow" ]; then
        fail "no binary at $B/orderflow (run make)"
        exit 1
fi
check_prefix /usr
check_prefix /usr/local
[ "$failed" -eq 0 ] || echo "# $failed check(s) failed"
[ "$failed" -eq 0 ]
