#!/usr/bin/env bash
# orderflow project end to end, as a user runs it: `orderflow broker` in
# another process, events published by kcat, the projector crashed between
# its database and Kafka commits and killed with SIGKILL at random moments,
# restarted each time; the read model must end exactly as an independent
# model (gen_stream.py) says, and readers must see consistent totals while
# it applies. Then SIGTERM, a new group, and usage errors.
set -u

of=${ORDERFLOW:-build/orderflow}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/orderflow-project.XXXXXX") || exit 1
. "$(dirname "$0")/../lib.sh"
broker_pid= proj_pid= reader_pid=
cleanup() {
        for p in $reader_pid $proj_pid $broker_pid; do
                kill -9 "$p" 2>/dev/null
        done
        wait 2>/dev/null
        rm -rf "$tmp"
}
trap cleanup EXIT
db=$tmp/readmodel.db
name=setup
fast=(-X session.timeout.ms=6000 -X heartbeat.interval.ms=500)

fail() {
        echo "not ok - $name: $*" >&2
        [ -s "$tmp/proj.err" ] && tail -5 "$tmp/proj.err" >&2
        exit 1
}

[ -x "$of" ] || fail "no binary at $of (run make first)"
command -v kcat >/dev/null || fail "kcat is needed to publish events"

# ---- an embedded broker in its own process ----
start_broker_ctl --partitions 4

name="publish with kcat"
python3 "$here/gen_stream.py" 4000 7 "$tmp" || fail "gen_stream.py failed"
# In record batches of 20 messages: a fetch returns its first batch whole
# whatever fetch.max.bytes says, so kcat's default batches (thousands of
# messages) let a run below apply thousands of offsets between two looks
# of the test, and finish before its SIGKILL.
kcat -P -b "$addr" -t orders -K '|' -X batch.num.messages=20 \
        -l "$tmp/stream.txt" || fail "kcat could not publish"
total=$(wc -l <"$tmp/stream.txt")
ok

consistent='SELECT (SELECT orders_placed FROM order_totals) =
        (SELECT count(placed_at) FROM order_list)
    AND (SELECT placed_amount FROM order_totals) =
        (SELECT ifnull(sum(total), 0) FROM order_list)
    AND (SELECT paid_amount FROM order_totals) =
        (SELECT ifnull(sum(paid_amount), 0) FROM order_list)
    AND (SELECT ifnull(sum(placed_amount), 0) FROM daily_totals) =
        (SELECT placed_amount FROM order_totals)
    AND (SELECT ifnull(sum(orders_paid), 0) FROM daily_totals) =
        (SELECT orders_paid FROM order_totals);'

check_consistent() {
        [ "$(sqlite3 "$db" "$consistent")" = 1 ] ||
                fail "order_totals/daily_totals differ from order_list sums"
}

# ---- crashes between the database commit and the Kafka commit ----
name="crash after a database commit, 6 times"
for i in 1 2 3 4 5 6; do
        ORDERFLOW_TEST_EXIT_AFTER_COMMITS=$((RANDOM % 8 + 1)) \
                "$of" project --db "$db" -b "$addr" -g "crash-$i" -e -q \
                --batch-max 50 "${fast[@]}" 2>"$tmp/proj.err"
        rc=$?
        [ "$rc" -eq 99 ] || fail "run $i: expected the test hook's exit 99, got $rc"
        check_consistent
done
ok

# ---- SIGKILL while it applies, same group ----
# Each kill comes once the run is seen applying (its offsets in the file
# grew past where it started, by at most 100 or a share of what is left
# (6 crashes above took at most 2,400 of its 7,362 offsets), so it
# lands mid-work whatever the machine's speed (small fetches, each 0.1 s
# late, keep a run applying for a second or more); a run that finished
# first fails the test.
kills=6
# On Kafka (through the test proxy) the first commit a run is seen making
# already holds some 900 offsets whatever its step (measured with this
# code and the code before it): six runs could use up the stream, so four.
real_kafka && kills=4
name="SIGKILL while it applies, $kills times"
offsets() {
        sq "$db" 'SELECT ifnull(sum(next_offset), 0) FROM partition_offsets'
}
ctl rtt 1 100
for run in $(seq "$kills"); do
        from=$(offsets)
        share=$(((total - from) / (8 - run)))
        [ "$share" -gt 0 ] || fail "nothing left to apply for run $run"
        [ "$share" -le 100 ] || share=100
        step=$((RANDOM % share + 1))
        "$of" project --db "$db" -b "$addr" -g killed -e -q --batch-max 50 \
                -X max.partition.fetch.bytes=2000 -X fetch.max.bytes=8000 \
                -X message.max.bytes=8000 "${fast[@]}" 2>"$tmp/proj.err" &
        proj_pid=$!
        applying() {
                kill -0 "$proj_pid" 2>/dev/null ||
                        fail "run $run ended before it was killed"
                [ "$(offsets)" -ge $((from + step)) ]
        }
        wait_for 60 "run $run to apply" applying
        kill -9 "$proj_pid" 2>/dev/null
        wait "$proj_pid" 2>/dev/null
        proj_pid=
        [ "$(offsets)" -lt "$total" ] || fail "run $run had applied everything"
        check_consistent
done
ctl rtt 1 0
ok

# ---- the rest, while a reader checks consistency every 20 ms ----
name="catch up while readers query"
(
        while :; do
                r=$(sqlite3 -cmd ".timeout 2000" "$db" "$consistent" 2>&1)
                [ "$r" = 1 ] || echo "$r" >>"$tmp/reader.bad"
                echo x >>"$tmp/reader.count"
                sleep 0.02
        done
) &
reader_pid=$!
wait_for 10 "the reader's first read" test -s "$tmp/reader.count"
"$of" project --db "$db" -b "$addr" -g final -e --batch-max 200 \
        "${fast[@]}" 2>"$tmp/proj.err" ||
        fail "final run exited $?"
kill "$reader_pid" 2>/dev/null
wait "$reader_pid" 2>/dev/null
reader_pid=
[ ! -s "$tmp/reader.bad" ] ||
        fail "a reader saw: $(sort -u "$tmp/reader.bad" | head -3)"
python3 "$here/gen_stream.py" check "$db" "$tmp" ||
        fail "the read model differs from the model (diff above)"
ok

name="a new group changes nothing"
sqlite3 "$db" .dump >"$tmp/before.sql"
"$of" project --db "$db" -b "$addr" -g brand-new -e -q "${fast[@]}" \
        2>"$tmp/proj.err" || fail "exited $?"
python3 "$here/gen_stream.py" check "$db" "$tmp" || fail "model changed"
sqlite3 "$db" 'SELECT sum(next_offset) FROM partition_offsets' \
        >"$tmp/offsets"
[ "$(cat "$tmp/offsets")" -eq "$total" ] ||
        fail "stored offsets sum to $(cat "$tmp/offsets"), expected $total"
ok

name="--dedupe-retention 1s forgets every id, keeps the projections"
cp "$db" "$tmp/ret.db"
sqlite3 "$tmp/ret.db" 'SELECT * FROM order_totals' >"$tmp/ret.before"
"$of" project --db "$tmp/ret.db" -b "$addr" -g retention \
        --dedupe-retention 1s "${fast[@]}" 2>"$tmp/proj.err" &
proj_pid=$!
# processed_recent is sealed at once (its rows are older than 1s / 4),
# the run dropped a second later
for _ in $(seq 150); do
        grep -q 'dedupe retention: dropped 1 run' "$tmp/proj.err" && break
        sleep 0.1
done
kill -TERM "$proj_pid"
wait "$proj_pid"
rc=$?
proj_pid=
[ "$rc" -eq 0 ] || fail "expected exit 0 after SIGTERM, got $rc"
grep -q "dedupe retention: dropped 1 run(s) of $(sqlite3 "$db" \
        'SELECT count(*) FROM processed_events') ids" "$tmp/proj.err" ||
        fail "no prune logged: $(grep retention "$tmp/proj.err")"
[ "$(sqlite3 "$tmp/ret.db" 'SELECT count(*) FROM processed_events')" = 0 ] ||
        fail "processed_events not empty"
[ "$(sqlite3 "$tmp/ret.db" 'SELECT * FROM order_totals')" = \
        "$(cat "$tmp/ret.before")" ] || fail "order_totals changed"
db=$tmp/ret.db check_consistent
ok

# What a projector says at the default level: one line at its start, a
# line per dead letter (the rows of dead_letters, each once), nothing of
# its measurements (rate, latency, time split: -v).
name="the log: a start line, each dead letter, no measurements"
"$of" project --db "$tmp/log.db" -b "$addr" -g log -e "${fast[@]}" \
        2>"$tmp/log.err" || fail "exited $?"
[ "$(grep -c " I projecting topic orders into $tmp/log.db: group log, brokers $addr; joining the group$" "$tmp/log.err")" -eq 1 ] ||
        fail "no start line: $(head -3 "$tmp/log.err")"
sed -n 's/^[0-9T:.Z-]* I dead letter: //p' "$tmp/log.err" | sort >"$tmp/said"
sqlite3 -separator '' "$tmp/log.db" "SELECT topic, ' [', partition,
        '] offset ', offset, ': ', reason FROM dead_letters" |
        sort >"$tmp/rows"
[ -s "$tmp/rows" ] || fail "the stream has no dead letter to say"
diff "$tmp/rows" "$tmp/said" >&2 ||
        fail "dead letters said differ from the rows (diff above)"
! grep -E ' [IWE] (rate|latency|time):' "$tmp/log.err" ||
        fail "measurement lines at the default level"
ok

name="SIGTERM stops within 10 s with exit 0"
"$of" project --db "$db" -b "$addr" -g term "${fast[@]}" 2>"$tmp/proj.err" &
proj_pid=$!
# (a real broker's join takes a while on a busy machine: its own bound)
wait_for $((broker_wait > 30 ? broker_wait : 30)) "partitions" \
        has_line "$tmp/proj.err" assigned
start=$(date +%s)
kill -TERM "$proj_pid"
wait "$proj_pid"
rc=$?
proj_pid=
[ "$rc" -eq 0 ] || fail "expected exit 0 after SIGTERM, got $rc"
[ $(($(date +%s) - start)) -le 10 ] || fail "took more than 10 s to stop"
ok

name="a lone message is applied at once, not at --batch-ms"
# A batch is committed when nothing more is ready to read (a group
# commit), whatever --batch-ms allows; here it allows 10 minutes.
"$of" project --db "$tmp/lone.db" -b "$addr" -g lone --batch-ms 600000 \
        "${fast[@]}" 2>"$tmp/proj.err" &
proj_pid=$!
wait_for $((broker_wait > 30 ? broker_wait : 30)) "partitions" \
        has_line "$tmp/proj.err" assigned
lone_id=0190b5b2-0000-7000-8000-00000000abcd
echo "lone-1|{\"id\":\"$lone_id\",\"type\":\"OrderPlaced\",\"aggregateId\":\"lone-1\",\"occurredAt\":\"2026-12-03T10:00:00.000Z\",\"payload\":{\"orderId\":\"lone-1\",\"total\":5}}" |
        kcat -P -b "$addr" -t orders -K '|' || fail "kcat failed"
lone_row() {
        why=$(sq "$tmp/lone.db" "SELECT status || ' ' || total FROM order_list
                WHERE order_id = 'lone-1'" 2>&1)
        [ "$why" = "ORDERED 5" ]
}
# (a bound for a busy machine, far below the 10 minutes)
wait_for 60 "lone-1 in the read model" lone_row
kill -TERM "$proj_pid"
wait "$proj_pid" || fail "exit $? after SIGTERM"
proj_pid=
ok

name="usage errors exit 2 with one line"
"$of" project -b "$addr" >"$tmp/out" 2>"$tmp/err"
[ $? -eq 2 ] && grep -q -- '--db' "$tmp/err" || fail "missing --db"
"$of" project --db "$db" -X no.such.property=1 >"$tmp/out" 2>"$tmp/err"
[ $? -eq 2 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] &&
        grep -q 'no.such.property' "$tmp/err" || fail "bad -X: $(cat "$tmp/err")"
"$of" project --db "$db" --batch-max zero >"$tmp/out" 2>"$tmp/err"
[ $? -eq 2 ] && grep -q -- '--batch-max' "$tmp/err" || fail "bad --batch-max"
for d in 0 0s 7w 1.5h -1d 3651d '' 12hours; do
        "$of" project --db "$db" --dedupe-retention "$d" >"$tmp/out" \
                2>"$tmp/err"
        [ $? -eq 2 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] &&
                grep -q -- '--dedupe-retention' "$tmp/err" ||
                fail "--dedupe-retention '$d': $(cat "$tmp/err")"
done
"$of" project --help >"$tmp/out" || fail "--help exited non-zero"
grep -q -- '--exit-at-end' "$tmp/out" || fail "--help does not describe -e"
grep -q -- '--dedupe-retention DURATION' "$tmp/out" ||
        fail "--help does not describe --dedupe-retention"
ok

name="an unwritable read model is exit 1"
mkdir "$tmp/ro" && chmod 500 "$tmp/ro"
if [ "$(id -u)" -ne 0 ]; then
        "$of" project --db "$tmp/ro/x.db" -b "$addr" -e 2>"$tmp/err"
        [ $? -eq 1 ] || fail "expected exit 1"
fi
echo "not a database, just some text long enough to fill a header. ....." \
        >"$tmp/bad.db"
"$of" project --db "$tmp/bad.db" -b "$addr" -e 2>"$tmp/err"
[ $? -eq 1 ] && grep -q 'bad.db' "$tmp/err" ||
        fail "a corrupt file: expected exit 1 naming it, got $(cat "$tmp/err")"
ok
