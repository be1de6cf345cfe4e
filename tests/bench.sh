#!/usr/bin/env bash
# make bench: the projector from start to -e exit over a pre-filled topic
# on the embedded broker (BENCH_BROKER=kafka: on real Apache Kafka, through
# tests/kafka/broker.sh; both: one after the other in one run), for
# time-ordered (v7) and random (v4) event ids, then `rebuild` of the same
# topic into the last run's file.
# Reports the steady rate (from the first applied batch to exit: median,
# min, max of BENCH_RUNS runs) and peak RSS; writes JSON Lines under
# $B/bench/. Not part of make test: figures are reported, never asserted.
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

printf '%-28s %10s %10s %10s %12s   %s\n' case "events/s" min max "peak RSS" \
        "time split of the median run (s)"
for kind in v7 v4; do
        bench_broker -t bench -p "$parts" ||
                die "the broker printed no address in 10 s"
        python3 "$root/tests/bench_gen.py" "$n" "$kind" |
                kcat -P -b "$addr" -t bench -K '|' \
                        -X compression.codec=zstd -X linger.ms=50 \
                        -X batch.num.messages=10000 ||
                die "publishing failed"
        rates=() rss=() split=()
        for r in $(seq "$runs"); do
                rm -f "$tmp"/rm.db*
                "$of" project --db "$tmp/rm.db" -b "$addr" -t bench \
                        -g "bench-$kind-$r" -e 2>"$tmp/run.err" ||
                        die "project failed: $(tail -2 "$tmp/run.err")"
                got=$(sqlite3 "$tmp/rm.db" \
                        'SELECT count(*) FROM processed_events')
                [ "$got" -eq "$n" ] ||
                        die "$got of $n events applied (retention?)"
                rates+=("$(sed -n 's/.*(\([0-9]*\)\/s).*/\1/p' \
                        "$tmp/run.err" | tail -1)")
                rss+=("$(sed -n 's/.*peak RSS \([0-9]*\) KiB.*/\1/p' \
                        "$tmp/run.err" | tail -1)")
                split+=("$(sed -n 's/.*time: \(fetch .*\) (decode '`
                        `'excluded; \(commit [0-9.]* s\).*/\1, \2/p' \
                        "$tmp/run.err" | tail -1)")
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
        med=$(printf '%s\n' "${rates[@]}" | median)
        min=$(printf '%s\n' "${rates[@]}" | sort -g | head -1)
        max=$(printf '%s\n' "${rates[@]}" | sort -g | tail -1)
        mrss=$(printf '%s\n' "${rss[@]}" | sort -g | tail -1)
        for r in "${!rates[@]}"; do
                [ "${rates[$r]}" = "$med" ] && msplit=${split[$r]}
        done
        printf '%-28s %10s %10s %10s %9s MiB   %s\n' "project $n $kind ids" \
                "$med" "$min" "$max" "$((mrss / 1024))" "$msplit"
        printf '{"case":"project","events":%s,"ids":"%s","runs":%s,'`
                `'"events_per_s_median":%s,"min":%s,"max":%s,'`
                `'"peak_rss_kib":%s,"median_run_time":"%s"}\n' "$n" "$kind" \
                "$runs" "$med" "$min" "$max" "$mrss" "$msplit" >>"$out"
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
        [ "$grow" -gt 0 ] || break
        bench_broker -t grow -p 128 ||
                die "the broker printed no address in 10 s"
        python3 "$root/tests/bench_gen.py" "$grow" "$kind" |
                kcat -P -b "$addr" -t grow -K '|' \
                        -X compression.codec=zstd -X linger.ms=50 \
                        -X batch.num.messages=10000 ||
                die "publishing failed"
        rm -f "$tmp"/rm.db*
        "$of" project --db "$tmp/rm.db" -b "$addr" -t grow -g "grow-$kind" \
                -e 2>"$tmp/run.err" ||
                die "project failed: $(tail -2 "$tmp/run.err")"
        got=$(sqlite3 "$tmp/rm.db" 'SELECT count(*) FROM processed_events')
        [ "$got" -eq "$grow" ] || die "$got of $grow events applied"
        stop_broker "growth $kind"
        per=$(sed -n 's/.*progress: [0-9]* messages applied, \([0-9]*\)\/s.*/\1/p' \
                "$tmp/run.err" | tr '\n' ' ')
        first=$(echo "$per" | awk '{print $1}')
        last=$(echo "$per" | awk '{print $NF}')
        mrss=$(sed -n 's/.*peak RSS \([0-9]*\) KiB.*/\1/p' "$tmp/run.err")
        printf '%-28s %s (last/first %s%%), peak RSS %s MiB\n' \
                "growth $grow $kind (per 1M)" "$per" \
                "$((100 * last / first))" "$((mrss / 1024))"
        printf '{"case":"growth","events":%s,"ids":"%s","per_million":[%s],'`
                `'"last_over_first_pct":%s,"peak_rss_kib":%s}\n' "$grow" \
                "$kind" "$(echo $per | tr ' ' ',')" \
                "$((100 * last / first))" "$mrss" >>"$out"
done

# ---- the relay: rows/s publishing BENCH_RELAY_ROWS outbox rows ----
rows=${BENCH_RELAY_ROWS:-100000}
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
rates=()
for r in $(seq "$runs"); do
        sqlite3 "$app" "UPDATE outbox_messages SET status = 'PENDING',
                sent_at = NULL, attempts = 0, next_attempt_at = 0"
        start=$(date +%s.%N)
        "$of" relay --db "$app" -b "$addr" --once -q ||
                die "relay failed"
        end=$(date +%s.%N)
        rates+=("$(awk -v n="$rows" -v a="$start" -v b="$end" \
                'BEGIN { printf "%d", (n + 1) / (b - a) }')")
done
stop_broker "relay"
med=$(printf '%s\n' "${rates[@]}" | median)
min=$(printf '%s\n' "${rates[@]}" | sort -g | head -1)
max=$(printf '%s\n' "${rates[@]}" | sort -g | tail -1)
printf '%-28s %10s %10s %10s\n' "relay $rows rows (rows/s)" "$med" "$min" \
        "$max"
printf '{"case":"relay","rows":%s,"runs":%s,"rows_per_s_median":%s,'`
        `'"min":%s,"max":%s}\n' "$rows" "$runs" "$med" "$min" "$max" \
        >>"$out"
# ---- latency: events offered at 1,000/s to a live projector ----
bench_broker -t lat -p 4 ||
        die "the broker printed no address in 10 s"
rm -f "$tmp"/lat.db*
"$of" project --db "$tmp/lat.db" -b "$addr" -t lat -g lat \
        -X session.timeout.ms=6000 2>"$tmp/lat.err" &
proj=$!
for _ in $(seq 200); do
        grep -q assigned "$tmp/lat.err" && break
        sleep 0.1
done
python3 "$root/tests/bench_gen.py" 10000 v7 1000 |
        kcat -P -b "$addr" -t lat -K '|' -X linger.ms=1 ||
        die "publishing failed"
for _ in $(seq 300); do
        [ "$(sqlite3 "$tmp/lat.db" 'SELECT count(*) FROM processed_events' \
                2>/dev/null)" = 10000 ] && break
        sleep 0.1
done
kill -TERM "$proj"
wait "$proj"
stop_broker "latency"
p50=$(sed -n 's/.*p50 \([0-9]*\) ms.*/\1/p' "$tmp/lat.err")
p99=$(sed -n 's/.*p99 \([0-9]*\) ms.*/\1/p' "$tmp/lat.err")
printf '%-28s %10s %10s\n' "latency at 1,000/s (ms)" "p50 $p50" "p99 $p99"
printf '{"case":"latency","rate":1000,"events":10000,"p50_ms":%s,'`
        `'"p99_ms":%s}\n' "${p50:-null}" "${p99:-null}" >>"$out"
echo "results: $out"
