#!/usr/bin/env bash
# tests/bench/rss.sh [-k embedded|kafka] [-n EVENTS] [-p PARTITIONS]
#                    [-i v7|v4] [-r RUNS] VARIANT...
# The projector's peak RSS and steady rate for each VARIANT, alternated
# RUNS (3) times over one topic of EVENTS (1,000,000) events on one broker
# (embedded, or real Kafka through tests/kafka/broker.sh): what each
# setting costs in memory, measured one change at a time.
# A VARIANT is "NAME: WORD..." where a WORD is VAR=VALUE (the projector's
# environment, e.g. MALLOC_ARENA_MAX=2), bin=DIR (DIR/orderflow instead of
# $B/orderflow) or a `project` option (-X key=value, --batch-max N).
# Prints "NAME RUN EVENTS/S PEAK-RSS-KiB" a run, then each NAME's median
# rate, its spread and its largest peak RSS (runs with -v: the rate is a
# debug line). RSS_SMAPS=DIR: DIR/NAME-RUN gets the projector's
# /proc/PID/smaps at its largest RSS (sampled every 50 ms), where the
# memory is (heap, thread arenas, libraries); DIR/NAME-RUN.threads its
# thread count then, DIR/NAME-RUN.trace the RSS (KiB) at each sample and
# DIR/NAME-RUN.err the projector's log.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
B=${B:-build}
case $B in /*) ;; *) B=$root/$B ;; esac
of=$B/orderflow
kind=embedded n=1000000 parts=64 ids=v7 runs=3
while getopts k:n:p:i:r: o; do
        case $o in
        k) kind=$OPTARG ;;
        n) n=$OPTARG ;;
        p) parts=$OPTARG ;;
        i) ids=$OPTARG ;;
        r) runs=$OPTARG ;;
        *) exit 2 ;;
        esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { echo "usage: see the head of $0" >&2; exit 2; }
case $kind in
kafka) export OF_TEST_BROKER=$root/tests/kafka/broker.sh KAFKA_DIRECT=1
        export OF_TEST_BROKER_WAIT=180 ;;
embedded) unset OF_TEST_BROKER ;;
*) echo "rss: -k embedded or kafka" >&2; exit 2 ;;
esac
tmp=$(mktemp -d "${TMPDIR:-/tmp}/orderflow-rss.XXXXXX") || exit 1
. "$root/tests/lib.sh"
broker_pid=
trap '[ -n "$broker_pid" ] && kill $broker_pid 2>/dev/null; wait;
        rm -rf "$tmp"' EXIT
die() { echo "rss: $*" >&2; exit 1; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# watch PID FILE: /proc/PID/smaps into FILE whenever PID's RSS is the
# largest seen so far, until PID exits.
watch() {
        local max=0 r
        while r=$(awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null) &&
                [ -n "$r" ]; do
                echo "$(date +%s.%N | cut -c1-14) $r" >>"$2.trace"
                if [ "$r" -gt "$max" ] &&
                        cat "/proc/$1/smaps" >"$2.new" 2>/dev/null; then
                        mv "$2.new" "$2"
                        ls "/proc/$1/task" | wc -l >"$2.threads"
                        max=$r
                fi
                sleep 0.05
        done
}

# run_variant SPEC RUN: one projector run of variant SPEC from the start
# of the topic; prints its line.
run_variant() {
        local name=${1%%:*} words env=() args=() bin=$of w got pid wpid
        read -ra words <<<"${1#*:}"
        for w in "${words[@]}"; do
                case $w in
                bin=*) bin=${w#bin=}/orderflow ;;
                [A-Z]*=*) env+=("$w") ;;
                *) args+=("$w") ;;
                esac
        done
        rm -f "$tmp"/rm.db*
        env ${env[@]+"${env[@]}"} "$bin" project --db "$tmp/rm.db" \
                -b "$addr" -t rss -g "rss-$name-$2" -e -v \
                ${args[@]+"${args[@]}"} 2>"$tmp/run.err" &
        pid=$!
        wpid=
        if [ -n "${RSS_SMAPS:-}" ]; then
                watch "$pid" "$RSS_SMAPS/$name-$2" &
                wpid=$!
        fi
        wait "$pid" || die "$name: $(tail -2 "$tmp/run.err")"
        if [ -n "$wpid" ]; then
                wait "$wpid"
                cp "$tmp/run.err" "$RSS_SMAPS/$name-$2.err"
        fi
        got=$(sqlite3 "$tmp/rm.db" 'SELECT count(*) FROM processed_events')
        [ "$got" -eq "$n" ] || die "$name: $got of $n events applied"
        echo "$name $2" \
                "$(sed -n 's/.*(\([0-9]*\)\/s).*/\1/p' "$tmp/run.err" |
                        tail -1)" \
                "$(sed -n 's/.*peak RSS \([0-9]*\) KiB.*/\1/p' \
                        "$tmp/run.err" | tail -1)"
}

start_broker -t rss -p "$parts" || die "no broker address"
python3 "$root/tests/bench_gen.py" "$n" "$ids" |
        kcat -P -b "$addr" -t rss -K '|' -X compression.codec=zstd \
                -X linger.ms=50 -X batch.num.messages=10000 ||
        die "publishing failed"
echo "# $kind, $n $ids events, $parts partitions, $runs runs"
for r in $(seq "$runs"); do
        for v in "$@"; do
                run_variant "$v" "$r"
        done
done | tee "$tmp/runs.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || exit 1
for v in "$@"; do
        name=${v%%:*}
        awk -v w="$name" '$1 == w {print $3}' "$tmp/runs.txt" >"$tmp/r"
        awk -v w="$name" '$1 == w {print $4}' "$tmp/runs.txt" >"$tmp/m"
        printf '%-14s median %6s/s (%s-%s), peak RSS max %s MiB\n' "$name" \
                "$(median <"$tmp/r")" "$(sort -g "$tmp/r" | head -1)" \
                "$(sort -g "$tmp/r" | tail -1)" \
                "$(($(sort -g "$tmp/m" | tail -1) / 1024))"
done
