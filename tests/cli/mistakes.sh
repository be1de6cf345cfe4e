#!/usr/bin/env bash
# Ordinary operator mistakes must never turn into a wrong or empty read
# model without a word:
# - two rebuilds of one file at once: the first holds the lock for its
#   whole replay (stopped with SIGSTOP part way, so the second surely
#   comes while it runs); the second is refused; the first completes; the
#   model is exact (found 2026-12: the lock file was the replay's own file,
#   removed and created again, so a second rebuild got a lock of its own
#   and the live model ended empty);
# - a rebuild of a mistyped topic, of an emptied topic, of a topic with
#   fewer partitions: refused (exit 1, one line, the live file as it was);
#   --force goes ahead (found 2026-12: `orders 21 -> 0`, exit 0);
# - the topic deleted and created again (here: a new broker), so the read
#   model's offsets lie past the partitions' ends: project -e, project and
#   status stop with exit 1 and one line naming each partition with its
#   offsets and the remedy; nothing is applied; then rebuild mends it
#   (found 2026-12: project -e exited 0 having applied nothing, a running
#   projector applied from offset 0 while status showed lag 0);
# - a fetch the broker answers "offset out of range" although the offset
#   is there: the projector reads on from the same offset (no reset to the
#   beginning, no event read twice);
# - retention deleted what a stopped projector would read next: it says
#   which offsets it lacks and goes on from the first one there is.
set -u

of=${ORDERFLOW:-build/orderflow}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/orderflow-mistakes.XXXXXX") || exit 1
. "$(dirname "$0")/../lib.sh"
broker_pid= proj_pid= rb_pid=
cleanup() {
        for p in $rb_pid $proj_pid $broker_pid; do
                kill -CONT "$p" 2>/dev/null
                kill -9 "$p" 2>/dev/null
        done
        exec 7>&- 2>/dev/null
        wait 2>/dev/null
        [ -n "${KEEP:-}" ] && echo "kept $tmp" >&2 || rm -rf "$tmp"
}
trap cleanup EXIT
db=$tmp/readmodel.db
name=setup
fast=(-X session.timeout.ms=6000 -X heartbeat.interval.ms=500)

# the file as text, to show it did not change
dump() { sq "$db" .dump; }
# expect_refusal RC PATTERN FILE GOT: the exit code GOT is RC, and FILE
# (its stderr) is one line matching PATTERN.
expect_refusal() {
        [ "$1" -eq "$4" ] || fail "exit $4, expected $1: $(cat "$3")"
        [ "$(wc -l <"$3")" -eq 1 ] || fail "not one line: $(cat "$3")"
        grep -q -- "$2" "$3" || fail "message: $(cat "$3")"
}

[ -x "$of" ] || fail "no binary at $of (run make first)"
command -v kcat >/dev/null || fail "kcat is needed to publish events"
start_broker_ctl --partitions 4
python3 "$here/gen_stream.py" 3000 17 "$tmp" || fail "gen_stream.py failed"
kcat -P -b "$addr" -t orders -K '|' -l "$tmp/stream.txt" ||
        fail "kcat could not publish"
"$of" project --db "$db" -b "$addr" -g first -e -q "${fast[@]}" \
        2>"$tmp/proj.err" || fail "project -e exited $?"
python3 "$here/gen_stream.py" check "$db" "$tmp" || fail "model"
total=$(wc -l <"$tmp/stream.txt")

# ---- two rebuilds at once ----
name="a second rebuild while the first replays is refused"
# Slow fetches (small, 100 ms each) keep the first one replaying for a
# few seconds; it is stopped once it has applied part of the replay.
ctl rtt 1 100
"$of" rebuild --db "$db" -b "$addr" --batch-max 50 \
        -X max.partition.fetch.bytes=5000 -X fetch.max.bytes=20000 \
        -X message.max.bytes=20000 \
        >"$tmp/rb1.out" 2>"$tmp/rb1.err" &
rb_pid=$!
progress() {
        kill -0 "$rb_pid" 2>/dev/null ||
                fail "the first rebuild exited: $(tail -2 "$tmp/rb1.err")"
        has_line "$tmp/rb1.err" 'rebuild: [0-9]* of'
}
wait_for 60 "the first rebuild's progress" progress
kill -STOP "$rb_pid"
grep -q '(100%)' "$tmp/rb1.err" &&
        fail "the first rebuild finished before it was stopped"
"$of" rebuild --db "$db" -b "$addr" -q >"$tmp/rb2.out" 2>"$tmp/rb2.err"
expect_refusal 1 "another rebuild of $db is running.*; $db is unchanged" \
        "$tmp/rb2.err" $?
ls "$db".rebuild-* >/dev/null 2>&1 ||
        fail "the first rebuild's file is gone"
kill -CONT "$rb_pid"
wait "$rb_pid" || fail "the first rebuild exited $?: $(tail -2 "$tmp/rb1.err")"
rb_pid=
ctl rtt 1 0
python3 "$here/gen_stream.py" check "$db" "$tmp" ||
        fail "the model differs after the rebuild"
ls "$db".rebuild* >/dev/null 2>&1 && fail "a replay file was left: $(ls "$db".rebuild*)"
[ -e "$db.lock" ] || fail "no lock file beside the model"
ok

# ---- rebuilds of the wrong topic ----
name="rebuild of a mistyped topic is refused"
dump >"$tmp/before.sql"
"$of" rebuild --db "$db" -b "$addr" -t ordres -q >/dev/null 2>"$tmp/err"
rc=$?
if real_kafka; then
        # Kafka creates no topic for a consumer's question: it is missing.
        expect_refusal 1 "topic ordres does not exist (a wrong --topic?)" \
                "$tmp/err" $rc
        # and looking did not create it
        "$kadmin" -b "$addr" watermarks ordres >/dev/null 2>&1 &&
                fail "the rebuild created topic ordres"
else
        # The embedded broker creates it, empty.
        expect_refusal 1 "holds offsets of topic orders, not of ordres.*--force" \
                "$tmp/err" $rc
fi
dump | cmp -s - "$tmp/before.sql" || fail "the live file changed"
ok

name="rebuild of an empty topic is refused; --force goes ahead"
cp "$db" "$tmp/keep.db"
start_broker_ctl --partitions 4 # "orders" deleted and created again, empty
"$of" rebuild --db "$db" -b "$addr" -q >/dev/null 2>"$tmp/err"
expect_refusal 1 "topic orders holds no events, but the read model has applied $total offsets.*--force" \
        "$tmp/err" $?
dump | cmp -s - "$tmp/before.sql" || fail "the live file changed"
"$of" rebuild --db "$db" -b "$addr" -q --force >/dev/null 2>"$tmp/err" ||
        fail "--force exited $?: $(cat "$tmp/err")"
[ "$(sq "$db" 'SELECT count(*) FROM order_list')" -eq 0 ] ||
        fail "--force did not build the empty model"
cp "$tmp/keep.db" "$db"
rm -f "$db-wal" "$db-shm"
ok

name="rebuild from a topic with fewer partitions is refused"
start_broker_ctl --partitions 2
head -5 "$tmp/stream.txt" | kcat -P -b "$addr" -t orders -K '|' ||
        fail "kcat could not publish"
"$of" rebuild --db "$db" -b "$addr" -q >/dev/null 2>"$tmp/err"
expect_refusal 1 "has applied partition(s) \[2\], \[3\] of topic orders, which has 2 partition(s) now.*--force" \
        "$tmp/err" $?
dump | cmp -s - "$tmp/before.sql" || fail "the live file changed"
ok

# ---- the topic deleted and created again ----
name="recreated topic: project -e stops, naming the partitions"
start_broker_ctl --partitions 4
head -3 "$tmp/stream.txt" | kcat -P -b "$addr" -t orders -K '|' -p 0 ||
        fail "kcat could not publish"
"$of" project --db "$db" -b "$addr" -g again -e -q "${fast[@]}" \
        2>"$tmp/err"
expect_refusal 1 "the read model is ahead of topic orders: \[0\] next offset [0-9]*, end 3, \[1\] next offset [0-9]*, end 0.*'orderflow rebuild'" \
        "$tmp/err" $?
dump | cmp -s - "$tmp/before.sql" || fail "the live file changed"
ok

name="recreated topic: a projector stops too"
"$of" project --db "$db" -b "$addr" -g again -q "${fast[@]}" \
        2>"$tmp/err" &
proj_pid=$!
wait_for 30 "the projector to stop" eval '! kill -0 $proj_pid 2>/dev/null'
wait "$proj_pid"
rc=$?
proj_pid=
expect_refusal 1 "the read model is ahead of topic orders: \[0\] next offset" \
        "$tmp/err" "$rc"
dump | cmp -s - "$tmp/before.sql" || fail "the live file changed"
ok

name="recreated topic: status says so, exit 1"
"$of" status --db "$db" -b "$addr" --json >"$tmp/status.json" \
        2>"$tmp/err"
expect_refusal 1 "the read model is ahead of topic orders" "$tmp/err" $?
python3 - "$tmp/status.json" <<'EOF' || fail "status --json: $(cat "$tmp/status.json")"
import json, sys
s = json.load(open(sys.argv[1]))
assert "ahead of topic orders" in s["problem"], s["problem"]
assert s["lag"] is None, s["lag"]
p0 = [p for p in s["partitions"] if p["partition"] == 0][0]
assert p0["end"] == 3 and p0["applied"] > 3 and p0["lag"] is None, p0
EOF
ok

name="recreated topic: rebuild mends it"
"$of" rebuild --db "$db" -b "$addr" -q >/dev/null 2>"$tmp/err" ||
        fail "rebuild exited $?: $(cat "$tmp/err")"
[ "$(sq "$db" 'SELECT sum(next_offset) FROM partition_offsets')" -eq 3 ] ||
        fail "offsets: $(sq "$db" 'SELECT * FROM partition_offsets')"
"$of" status --db "$db" -b "$addr" >/dev/null 2>"$tmp/err" ||
        fail "status exited $?: $(cat "$tmp/err")"
"$of" project --db "$db" -b "$addr" -g again -e -q "${fast[@]}" \
        2>"$tmp/err" || fail "project -e exited $?: $(cat "$tmp/err")"
ok

# ---- out of range ----
name="an out-of-range answer for an offset that is there: no re-read"
if embedded_only "$name"; then
        db=$tmp/range.db
        "$of" project --db "$db" -b "$addr" -g range "${fast[@]}" \
                2>"$tmp/range.err" &
        proj_pid=$!
        wait_for 30 "the assignment" has_line "$tmp/range.err" 'assigned'
        wait_for 30 "the first batch" eval \
                '[ "$(sq "$db" "SELECT ifnull(sum(next_offset), 0) FROM partition_offsets" 2>/dev/null || echo 0)" -eq 3 ]'
        # The next fetches (the projector waits at the end) are answered out of
        # range; then the stream comes.
        ctl errors Fetch 4 OFFSET_OUT_OF_RANGE
        wait_for 30 "an out-of-range answer" \
                has_line "$tmp/range.err" 'fetching from [0-9]* again'
        kcat -P -b "$addr" -t orders -K '|' -l "$tmp/stream.txt" ||
                fail "kcat could not publish"
        wait_for 60 "every offset applied" eval \
                '[ "$(sq "$db" "SELECT sum(next_offset) FROM partition_offsets")" -eq $((total + 3)) ]'
        kill -TERM "$proj_pid"
        wait "$proj_pid" || fail "the projector exited $? after SIGTERM"
        proj_pid=
        # The same topic projected without the fault: as many duplicates (the
        # stream's own redeliveries), not more.
        "$of" project --db "$tmp/ref.db" -b "$addr" -g ref -e -q "${fast[@]}" \
                2>"$tmp/err" || fail "project -e exited $?: $(cat "$tmp/err")"
        dups() { sq "$1" 'SELECT duplicates FROM store_info'; }
        [ "$(dups "$db")" -eq "$(dups "$tmp/ref.db")" ] ||
                fail "$(dups "$db") duplicates, $(dups "$tmp/ref.db") without the fault: events read twice"
        ok
fi

# ---- retention while the projector was stopped ----
name="retention deleted what a stopped projector reads next: it says so"
db=$tmp/big.db
pad() {
        python3 -c '
import sys
pad = "x" * 60000
for i in range(int(sys.argv[1]), int(sys.argv[2])):
    sys.stdout.write("k%d|{\"pad\":\"%s\"}\n" % (i, pad))
' "$1" "$2"
}
pad 0 50 | kcat -P -b "$addr" -t big -p 0 -K '|' || fail "kcat"
"$of" project --db "$db" -b "$addr" -t big -g big -e -q "${fast[@]}" \
        2>"$tmp/err" || fail "project -e exited $?: $(cat "$tmp/err")"
# 12 MB more: the embedded broker keeps about 5 MiB a partition, so the
# offsets after 50 go too; real Kafka deletes them when told
# (DeleteRecords, as retention would).
pad 50 250 | kcat -P -b "$addr" -t big -p 0 -K '|' || fail "kcat"
if real_kafka; then
        "$kadmin" -b "$addr" delete-records big 0 100 >/dev/null ||
                fail "kadmin delete-records failed"
fi
low=$(kcat -Q -b "$addr" -t big:0:-2 | sed -n 's/.*offset \([0-9]*\).*/\1/p')
[ "$low" -gt 50 ] || fail "the broker kept offset 50 (first offset $low)"
"$of" project --db "$db" -b "$addr" -t big -g big -e "${fast[@]}" \
        2>"$tmp/err" || fail "project -e exited $?: $(tail -2 "$tmp/err")"
grep -q "W big \[0\]: offsets 50-$((low - 1)) were deleted (retention)" \
        "$tmp/err" || fail "no warning: $(grep ' [WE] ' "$tmp/err")"
[ "$(sq "$db" 'SELECT next_offset FROM partition_offsets WHERE "partition" = 0')" -eq 250 ] ||
        fail "did not go on to the end"
ok
