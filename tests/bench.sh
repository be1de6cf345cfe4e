#!/usr/bin/env bash
# make bench: the projector from start to -e exit over a pre-filled topic
# on the embedded broker (BENCH_BROKER=kafka: on real Apache Kafka, through
# tests/kafka/broker.sh; both: one after the other in one run), for
# time-ordered (v7) and random (v4) event ids, then `rebuild` of the same
# topic into the last run's file.
# Reports the steady rate (from the first applied batch to exit: median,
# min, max of BENCH_RUNS runs) and peak RSS (the largest of the runs, from
# the projector's exit summary); then the store alone, the growth of the
# cost and of peak RSS over 5M events, the relay's rows/s, and end-to-end
# latency (an order's commit to its row in the read model) at 100 and
# 1,000 orders/s with the time of each stage, and the CPU an idle relay
# and projector use. Writes JSON Lines under $B/bench/. Not part of make
# test: figures are reported, never asserted.
# BENCH_CASES: which of "project store growth relay latency" (all).
# BENCH_BASELINE=DIR (a build directory of an earlier version, e.g. of a git
# worktree): its projector and relay run too, alternated with this build's
# on the same topics and rows (the growth case: one run each on one topic),
# and the latency cases run for both, so a before/after table comes from
# one run on one machine. BENCH_EVENTS (1000000), BENCH_RUNS (3),
# BENCH_PARTITIONS (64), BENCH_GROWTH_EVENTS (5000000; 0: no growth case),
# BENCH_RELAY_ROWS, BENCH_LATENCY_SECONDS, BENCH_IDLE_SECONDS as below.
set -u

root=$(cd "$(dirname "$0")/.." && pwd)
B=${B:-build}
case $B in /*) ;; *) B=$root/$B ;; esac
of=$B/orderflow
n=${BENCH_EVENTS:-1000000}
runs=${BENCH_RUNS:-3}
parts=${BENCH_PARTITIONS:-64} # within the mock's retention per partition
broker_kind=${BENCH_BROKER:-embedded}
case $broker_kind in
both)
        BENCH_BROKER=embedded "$0" || exit 1
        exec env BENCH_BROKER=kafka "$0" ;;
kafka)
        # Clients straight to the node (no test proxy in the way).
        export OF_TEST_BROKER=$root/tests/kafka/broker.sh KAFKA_DIRECT=1
        export OF_TEST_BROKER_WAIT=180 ;;
embedded) unset OF_TEST_BROKER ;;
*) echo "bench: BENCH_BROKER: embedded, kafka or both" >&2; exit 2 ;;
esac
tmp=$(mktemp -d "${TMPDIR:-/tmp}/orderflow-bench.XXXXXX") || exit 1
. "$root/tests/lib.sh"
broker_pid=
cleanup() {
        [ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null
        wait 2>/dev/null
        rm -rf "$tmp"
}
trap cleanup EXIT
mkdir -p "$B/bench"
out=$B/bench/bench-$(date -u +%Y%m%dT%H%M%SZ).jsonl

die() { echo "bench: $*" >&2; exit 1; }
[ -x "$of" ] || die "no binary at $of"
command -v kcat >/dev/null || die "kcat is needed"

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# The builds measured: "after" is this one; "before" the baseline's.
declare -A bin=([after]=$of)
builds=(after)
if [ -n "${BENCH_BASELINE:-}" ]; then
        bin[before]=$(cd "$BENCH_BASELINE" && pwd)/orderflow
        [ -x "${bin[before]}" ] || die "no binary at ${bin[before]}"
        builds=(before after)
fi
want() {
        case " ${BENCH_CASES:-project store growth relay latency} " in
        *" $1 "*) return 0 ;;
        esac
        return 1
}
# label WHICH: how a case of build WHICH is named ("" without a baseline).
label() { [ ${#builds[@]} -gt 1 ] && echo " ($1)"; }

# stop_broker NAME: stop the broker, saying the CPU seconds it used (the
# process and its children: Kafka's JVMs) against the wall time since it
# started, for the case NAME.
stop_broker() {
        local cpu wall
        cpu=$(ps -o cputimes= -p "$broker_pid" --ppid "$broker_pid" |
                awk '{s += $1} END {print s + 0}')
        wall=$(($(date +%s) - broker_t0))
        printf '%-28s %s s CPU in %s s\n' "  broker ($broker_kind), $1" \
                "$cpu" "$wall"
        printf '{"case":"broker_cpu","broker":"%s","for":"%s","cpu_s":%s,'`
                `'"wall_s":%s}\n' "$broker_kind" "$1" "$cpu" "$wall" >>"$out"
        kill "$broker_pid"
        wait "$broker_pid" 2>/dev/null
        broker_pid=
}
bench_broker() { broker_t0=$(date +%s); start_broker "$@"; }
echo "broker: $broker_kind"
printf '{"case":"broker","broker":"%s"}\n' "$broker_kind" >>"$out"

declare -A rate_of=()
printf '%-28s %10s %10s %10s %12s   %s\n' case "events/s" min max "peak RSS" \
        "time split of the median run (s)"
for kind in v7 v4; do
        want project || break
        bench_broker -t bench -p "$parts" ||
                die "the broker printed no address in 10 s"
        python3 "$root/tests/bench_gen.py" "$n" "$kind" |
                kcat -P -b "$addr" -t bench -K '|' \
                        -X compression.codec=zstd -X linger.ms=50 \
                        -X batch.num.messages=10000 ||
                die "publishing failed"
        declare -A rates=() rss=() split=()
        for r in $(seq "$runs"); do
                for w in "${builds[@]}"; do
                        rm -f "$tmp"/rm.db*
                        # -v: the rate and the time split are debug lines
                        "${bin[$w]}" project --db "$tmp/rm.db" -b "$addr" \
                                -t bench -g "bench-$kind-$w-$r" -e -v \
                                2>"$tmp/run.err" ||
                                die "project failed: $(tail -2 "$tmp/run.err")"
                        got=$(sqlite3 "$tmp/rm.db" \
                                'SELECT count(*) FROM processed_events')
                        [ "$got" -eq "$n" ] ||
                                die "$got of $n events applied (retention?)"
                        rates[$w]+="$(sed -n 's/.*(\([0-9]*\)\/s).*/\1/p' \
                                "$tmp/run.err" | tail -1) "
                        rss[$w]+="$(sed -n 's/.*peak RSS \([0-9]*\) KiB.*/\1/p' \
                                "$tmp/run.err" | tail -1) "
                        split[$w,$r]=$(sed -n 's/.*time: \(fetch .*\) '`
                                `'(decode excluded; \(commit [0-9.]* s\).*/'`
                                `'\1, \2/p' "$tmp/run.err" | tail -1)
                        rate_of[$w,$r]=$(sed -n 's/.*(\([0-9]*\)\/s).*/\1/p' \
                                "$tmp/run.err" | tail -1)
                done
        done
        # rebuild: the last run's file is the live one; replay + swap
        rb_rates=() rb_total=() rb_swap=()
        for r in $(seq "$runs"); do
                "$of" rebuild --db "$tmp/rm.db" -b "$addr" -t bench \
                        >"$tmp/rb.out" 2>"$tmp/rb.err" ||
                        die "rebuild failed: $(tail -2 "$tmp/rb.err")"
                line=$(grep 'rebuild: done in' "$tmp/rb.err")
                rb_total+=("$(echo "$line" | sed -n 's/.*done in \([0-9.]*\) s.*/\1/p')")
                rb_rates+=("$(echo "$line" | sed -n 's/.*(\([0-9]*\) events\/s).*/\1/p')")
                rb_swap+=("$(echo "$line" | sed -n 's/.* \([0-9.]*\) s (generation.*/\1/p')")
        done
        got=$(sqlite3 "$tmp/rm.db" 'SELECT count(*) FROM processed_events')
        [ "$got" -eq "$n" ] || die "rebuild: $got of $n events"
        stop_broker "publish, project, rebuild $kind"
        rb_med=$(printf '%s\n' "${rb_rates[@]}" | median)
        rb_tmed=$(printf '%s\n' "${rb_total[@]}" | median)
        rb_smed=$(printf '%s\n' "${rb_swap[@]}" | median)
        for w in "${builds[@]}"; do
                med=$(printf '%s\n' ${rates[$w]} | median)
                min=$(printf '%s\n' ${rates[$w]} | sort -g | head -1)
                max=$(printf '%s\n' ${rates[$w]} | sort -g | tail -1)
                mrss=$(printf '%s\n' ${rss[$w]} | sort -g | tail -1)
                msplit=
                for r in $(seq "$runs"); do
                        [ "${rate_of[$w,$r]}" = "$med" ] &&
                                msplit=${split[$w,$r]}
                done
                printf '%-28s %10s %10s %10s %9s MiB   %s\n' \
                        "project $n $kind$(label $w)" "$med" "$min" "$max" \
                        "$((mrss / 1024))" "$msplit"
                printf '{"case":"project","build":"%s","events":%s,'`
                        `'"ids":"%s","runs":%s,"events_per_s_median":%s,'`
                        `'"min":%s,"max":%s,"peak_rss_kib":%s,'`
                        `'"median_run_time":"%s"}\n' "$w" "$n" "$kind" \
                        "$runs" "$med" "$min" "$max" "$mrss" "$msplit" >>"$out"
        done
        printf '%-28s %10s %10s %10s %12s   %s\n' "rebuild $n $kind ids" \
                "$rb_med" "$(printf '%s\n' "${rb_rates[@]}" | sort -g | head -1)" \
                "$(printf '%s\n' "${rb_rates[@]}" | sort -g | tail -1)" "" \
                "total $rb_tmed s, of it swap $rb_smed s (medians)"
        printf '{"case":"rebuild","events":%s,"ids":"%s","runs":%s,'`
                `'"events_per_s_median":%s,"total_s_median":%s,'`
                `'"swap_s_median":%s}\n' "$n" "$kind" "$runs" "$rb_med" \
                "$rb_tmed" "$rb_smed" >>"$out"
done
# ---- the store alone: decode + apply, no Kafka (bench_store) ----
for kind in v7 v4; do
        want store || break
        rm -f "$tmp"/st.db*
        # generated first: the generator would take CPU from the store
        python3 "$root/tests/bench_gen.py" "$n" "$kind" >"$tmp/gen.txt" ||
                die "bench_gen.py failed"
        line=$("$B/bench/bench_store" "$tmp/st.db" 50000 <"$tmp/gen.txt" |
                tail -1) || die "bench_store failed"
        rm -f "$tmp/gen.txt"
        rate=$(echo "$line" | sed -n 's/.*: \([0-9]*\)\/s;.*/\1/p')
        printf '%-28s %10s   %s\n' "store only $n $kind ids" "$rate" \
                "$(echo "$line" | sed 's/.*\/s; //')"
        printf '{"case":"store","events":%s,"ids":"%s","events_per_s":%s}\n' \
                "$n" "$kind" "${rate:-null}" >>"$out"
done
# ---- cost growth: events/s for each successive million of 5M ----
grow=${BENCH_GROWTH_EVENTS:-5000000}
for kind in v7 v4; do
        [ "$grow" -gt 0 ] && want growth || break
        bench_broker -t grow -p 128 ||
                die "the broker printed no address in 10 s"
        python3 "$root/tests/bench_gen.py" "$grow" "$kind" |
                kcat -P -b "$addr" -t grow -K '|' \
                        -X compression.codec=zstd -X linger.ms=50 \
                        -X batch.num.messages=10000 ||
                die "publishing failed"
        for w in "${builds[@]}"; do
                rm -f "$tmp"/rm.db*
                "${bin[$w]}" project --db "$tmp/rm.db" -b "$addr" -t grow \
                        -g "grow-$kind-$w" -e 2>"$tmp/run.err" ||
                        die "project failed: $(tail -2 "$tmp/run.err")"
                got=$(sqlite3 "$tmp/rm.db" \
                        'SELECT count(*) FROM processed_events')
                [ "$got" -eq "$grow" ] || die "$got of $grow events applied"
                cp "$tmp/run.err" "$tmp/grow-$w.err"
        done
        stop_broker "growth $kind"
        for w in "${builds[@]}"; do
                pat='s/.*progress: [0-9]* messages applied, '
                pat+='\([0-9]*\)\/s.*/\1/p'
                per=$(sed -n "$pat" "$tmp/grow-$w.err" | tr '\n' ' ')
                first=$(echo "$per" | awk '{print $1}')
                last=$(echo "$per" | awk '{print $NF}')
                mrss=$(sed -n 's/.*peak RSS \([0-9]*\) KiB.*/\1/p' \
                        "$tmp/grow-$w.err" | tail -1)
                printf '%-28s %s (last/first %s%%), peak RSS %s MiB\n' \
                        "growth $grow $kind$(label $w) (per 1M)" "$per" \
                        "$((100 * last / first))" "$((${mrss:-0} / 1024))"
                printf '{"case":"growth","build":"%s","events":%s,'`
                        `'"ids":"%s","per_million":[%s],'`
                        `'"last_over_first_pct":%s,"peak_rss_kib":%s}\n' \
                        "$w" "$grow" "$kind" "$(echo $per | tr ' ' ',')" \
                        "$((100 * last / first))" "${mrss:-null}" >>"$out"
        done
done

# ---- the relay: rows/s publishing BENCH_RELAY_ROWS outbox rows ----
rows=${BENCH_RELAY_ROWS:-100000}
if want relay; then
bench_broker -t orders -p "$parts" ||
        die "the broker printed no address in 10 s"
app=$tmp/app.db
"$of" place --db "$app" --order o-seed --total 1 >/dev/null ||
        die "could not create $app"
# Fill the outbox directly: the writer's one-transaction-per-order speed
# is not what this measures.
sqlite3 "$app" "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1
        FROM n WHERE i < $rows)
    INSERT INTO outbox_messages (id, type, aggregate_id, occurred_at)
    SELECT printf('0190b5b2-0000-7000-8000-%012d', i), 'OrderPlaced',
        'o-' || i, '2026-11-27T10:15:30.123Z'
    FROM n;
    INSERT INTO outbox_payloads (seq, payload)
    SELECT seq, json_object('id', id, 'type', type, 'aggregateId',
        aggregate_id, 'occurredAt', occurred_at, 'payload',
        json_object('orderId', aggregate_id, 'total',
        100 + substr(aggregate_id, 3) % 1000))
    FROM outbox_messages WHERE aggregate_id != 'o-seed';" ||
        die "could not fill the outbox"
declare -A rates=()
for r in $(seq "$runs"); do
        for w in "${builds[@]}"; do
                sqlite3 "$app" "UPDATE outbox_messages SET status = 'PENDING',
                        sent_at = NULL, attempts = 0, next_attempt_at = 0"
                start=$(date +%s.%N)
                "${bin[$w]}" relay --db "$app" -b "$addr" --once -q ||
                        die "relay failed"
                end=$(date +%s.%N)
                rates[$w]+="$(awk -v n="$rows" -v a="$start" -v b="$end" \
                        'BEGIN { printf "%d", (n + 1) / (b - a) }') "
        done
done
stop_broker "relay"
for w in "${builds[@]}"; do
        med=$(printf '%s\n' ${rates[$w]} | median)
        min=$(printf '%s\n' ${rates[$w]} | sort -g | head -1)
        max=$(printf '%s\n' ${rates[$w]} | sort -g | tail -1)
        printf '%-28s %10s %10s %10s\n' "relay $rows rows$(label $w)" "$med" \
                "$min" "$max"
        printf '{"case":"relay","build":"%s","rows":%s,"runs":%s,'`
                `'"rows_per_s_median":%s,"min":%s,"max":%s}\n' "$w" "$rows" \
                "$runs" "$med" "$min" "$max" >>"$out"
done
fi
# ---- latency: orders placed at 100/s and 1,000/s (bench_latency), from
# the writer's commit to the row in the read model, through a relay and a
# projector with their defaults; the stages from their own summaries:
# commit -> claim, claim -> delivery report (the relay's), message
# timestamp -> read-model commit (the projector's). After the 100/s run
# both stay up idle for BENCH_IDLE_SECONDS: their CPU then.
lat_secs=${BENCH_LATENCY_SECONDS:-20}
idle_secs=${BENCH_IDLE_SECONDS:-60}
# cpu_s PID: CPU seconds the process has used.
cpu_s() {
        awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' \
                "/proc/$1/stat"
}
# stage FILE WHAT: "p50 X, p99 Y" (ms) of the summary line's WHAT.
stage() {
        sed -n "s/.*$2[^p]*p50 \([0-9.]*\) ms, p99 \([0-9.]*\) ms.*/\1 \2/p" \
                "$1" | tail -1
}
# A JVM just started compiles its hot code during the first seconds of
# load, on the same two cores: on Kafka, a warm-up of BENCH_LATENCY_WARMUP
# seconds (10) at the case's rate goes first, through a relay and a
# projector that are then stopped, so that the stages measured (from the
# summaries of the next two, which go on from where those left off)
# cover the measured orders only (and one probe order each pair sends
# through first).
warm=0
[ "$broker_kind" = kafka ] && warm=${BENCH_LATENCY_WARMUP:-10}
# pipeline_start WHICH RATE: build WHICH's relay and projector (group
# lat-WHICH-RATE) on the latency case's files; sets relay and proj.
pipeline_start() {
        # -v: the stages' latency lines are debug lines
        "${bin[$1]}" relay --db "$tmp/lapp.db" -b "$addr" -t orders -v \
                2>"$tmp/lrelay.err" &
        relay=$!
        "${bin[$1]}" project --db "$tmp/lat.db" -b "$addr" -t orders -v \
                -g "lat-$1-$2" 2>"$tmp/lproj.err" &
        proj=$!
        for _ in $(seq 300); do
                grep -q assigned "$tmp/lproj.err" && break
                sleep 0.1
        done
        grep -q assigned "$tmp/lproj.err" ||
                die "the projector was not assigned in 30 s"
        # One order through before the measured ones: a new producer's
        # first batch waits for its connection and (idempotence) its
        # producer id, 0.7 s on Kafka, which is start-up, not latency.
        "$B/bench/bench_latency" "$tmp/lapp.db" "$tmp/lat.db" 10 0.1 \
                "probe$RANDOM" >/dev/null || die "latency: the probe failed"
}
printf '%-28s %8s %8s %8s   %s\n' "latency (ms)" p50 p99 max \
        "stages p50/p99 (ms): commit->claim, claim->report, message->commit"
for w in "${builds[@]}"; do
        want latency || break
        for rate in 100 1000; do
                of=${bin[$w]} bench_broker -t orders -p 4 ||
                        die "the broker printed no address in 10 s"
                rm -f "$tmp"/lat.db* "$tmp"/lapp.db*
                "${bin[$w]}" place --db "$tmp/lapp.db" --order seed \
                        --total 1 >/dev/null || die "place failed"
                if [ "$warm" -gt 0 ]; then
                        pipeline_start "$w" "$rate"
                        "$B/bench/bench_latency" "$tmp/lapp.db" \
                                "$tmp/lat.db" "$rate" "$warm" warm \
                                >/dev/null || die "latency: the warm-up failed"
                        kill -TERM $relay $proj
                        wait $relay $proj
                fi
                pipeline_start "$w" "$rate"
                line=$("$B/bench/bench_latency" "$tmp/lapp.db" "$tmp/lat.db" \
                        "$rate" "$lat_secs") ||
                        die "latency: $line"
                idle=
                if [ "$rate" = 100 ] && [ "$idle_secs" -gt 0 ]; then
                        sleep 2
                        r0=$(cpu_s $relay) p0=$(cpu_s $proj)
                        sleep "$idle_secs"
                        r1=$(cpu_s $relay) p1=$(cpu_s $proj)
                        idle=$(awk -v a="$r0" -v b="$r1" -v c="$p0" \
                                -v d="$p1" -v s="$idle_secs" 'BEGIN {
                                printf "%.2f %.2f", 100 * (b - a) / s,
                                        100 * (d - c) / s }')
                fi
                kill -TERM $relay $proj
                wait $relay $proj
                stop_broker "latency $rate/s$(label $w)"
                set -- $(echo "$line" | sed -n \
                        's/.*p50 \([0-9.]*\) ms, p99 \([0-9.]*\) ms, max \([0-9.]*\) ms.*/\1 \2 \3/p')
                [ $# -eq 3 ] || die "latency: $line"
                claim=$(stage "$tmp/lrelay.err" "commit to claim")
                report=$(stage "$tmp/lrelay.err" "claim to delivery report")
                commit=$(stage "$tmp/lproj.err" "message timestamp to commit")
                printf '%-28s %8s %8s %8s   %s, %s, %s\n' \
                        "at $rate orders/s$(label $w)" "$1" "$2" "$3" \
                        "${claim:-?}" "${report:-?}" "${commit:-?}"
                printf '{"case":"latency","build":"%s","rate":%s,'`
                        `'"orders":%s,"p50_ms":%s,"p99_ms":%s,"max_ms":%s,'`
                        `'"commit_to_claim":"%s","claim_to_report":"%s",'`
                        `'"message_to_commit":"%s"}\n' "$w" "$rate" \
                        "$((rate * lat_secs))" "$1" "$2" "$3" "$claim" \
                        "$report" "$commit" >>"$out"
                if [ -n "$idle" ]; then
                        set -- $idle
                        printf '%-28s relay %s%%, projector %s%% of a core '`
                                `'over %s s\n' "idle CPU$(label $w)" "$1" "$2" \
                                "$idle_secs"
                        printf '{"case":"idle_cpu","build":"%s","seconds":%s,'`
                                `'"relay_pct":%s,"projector_pct":%s}\n' "$w" \
                                "$idle_secs" "$1" "$2" >>"$out"
                fi
        done
done
echo "results: $out"
