#!/usr/bin/env bash
# tests/bench/ab.sh OLD_BUILD NEW_BUILD [RUNS]: two builds' projectors
# (OLD_BUILD/orderflow, e.g. a worktree of the last release, and
# NEW_BUILD/orderflow) alternated RUNS (3) times each over one topic of
# 1M events on one embedded broker, for v7 and v4 ids: on a shared,
# drifting machine a ratio from interleaved runs says more than two
# `make bench` runs an hour apart. Prints "KIND WHICH EVENTS/S PEAK-RSS-MIB"
# a run, then the medians.
set -u
[ $# -ge 2 ] || { echo "usage: $0 OLD_BUILD NEW_BUILD [RUNS]" >&2; exit 2; }
old=$1 new=$2 runs=${3:-3}
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/orderflow-ab.XXXXXX") || exit 1
bp=
trap '[ -n "$bp" ] && kill $bp 2>/dev/null; rm -rf "$tmp"' EXIT
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for kind in v7 v4; do
        "$old/orderflow" broker -p 64 -t bench >"$tmp/b.out" 2>/dev/null &
        bp=$!
        for _ in $(seq 100); do [ -s "$tmp/b.out" ] && break; sleep 0.1; done
        addr=$(head -1 "$tmp/b.out")
        python3 "$root/tests/bench_gen.py" 1000000 "$kind" |
                kcat -P -b "$addr" -t bench -K '|' -X compression.codec=zstd \
                        -X linger.ms=50 -X batch.num.messages=10000 || exit 1
        for r in $(seq "$runs"); do
                for which in old new; do
                        b=$old
                        [ "$which" = new ] && b=$new
                        rm -f "$tmp"/rm.db*
                        "$b/orderflow" project --db "$tmp/rm.db" -b "$addr" \
                                -t bench -g "ab-$kind-$which-$r" -e -v \
                                2>"$tmp/run.err" || exit 1
                        echo "$kind $which" \
                                "$(sed -n 's/.*(\([0-9]*\)\/s).*/\1/p' \
                                        "$tmp/run.err" | tail -1)" \
                                "$(($(sed -n 's/.*peak RSS \([0-9]*\) KiB.*/\1/p' \
                                        "$tmp/run.err" | tail -1) / 1024))"
                done
        done | tee "$tmp/$kind.txt"
        kill "$bp"
        wait "$bp" 2>/dev/null
        bp=
        for which in old new; do
                echo "$kind $which median" \
                        "$(awk -v w=$which '$2 == w {print $3}' "$tmp/$kind.txt" |
                                median)/s"
        done
done
