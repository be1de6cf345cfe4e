#!/usr/bin/env bash
# orderflow rebuild end to end: `orderflow broker` in another process,
# events published by kcat, a live read model with a planted "bug" (a row
# that no event made, with totals to match). The rebuild replays the topic
# while a reader queries the live file every 20 ms: the reader never gets
# an error, always sees consistent totals, and sees the old model (the bug,
# the old generation) until it sees the new one, never a mix and never
# back; the new model equals the one the projector made before the bug.
# Then the same with a projector running on the file throughout while more
# events arrive: it notices the swap and the final model is exactly what
# the independent model (gen_stream.py) says. Then a rebuild killed part
# way and one interrupted (a clean stop: the live file as it was);
# history deleted by retention: refused with exit 1 naming the partition,
# a projector warns, --allow-truncated goes ahead and records it. Then
# usage errors.
set -u

of=${ORDERFLOW:-build/orderflow}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/orderflow-rebuild.XXXXXX") || exit 1
. "$(dirname "$0")/../lib.sh"
broker_pid= proj_pid= reader_pid=
cleanup() {
        for p in $reader_pid $proj_pid $broker_pid; do
                kill -9 "$p" 2>/dev/null
        done
        wait 2>/dev/null
        [ -n "${KEEP:-}" ] && echo "kept $tmp" >&2 || rm -rf "$tmp"
}
trap cleanup EXIT
db=$tmp/readmodel.db
name=setup
fast=(-X session.timeout.ms=6000 -X heartbeat.interval.ms=500)

fail() {
        echo "not ok - $name: $*" >&2
        for f in proj.err rebuild.err; do
                [ -s "$tmp/$f" ] && tail -5 "$tmp/$f" >&2
        done
        exit 1
}

[ -x "$of" ] || fail "no binary at $of (run make first)"
command -v kcat >/dev/null || fail "kcat is needed to publish events"
start_broker --partitions 4 || fail "the broker printed no address in 10 s"

# The stream in two parts: the first before anything runs, the second
# while the rebuild runs (kcat keeps each partition's order).
python3 "$here/gen_stream.py" 20000 11 "$tmp" || fail "gen_stream.py failed"
total=$(wc -l <"$tmp/stream.txt")
half=$((total / 2))
head -n "$half" "$tmp/stream.txt" >"$tmp/part1.txt"
tail -n +"$((half + 1))" "$tmp/stream.txt" >"$tmp/part2.txt"

# Every sqlite3 here waits for locks, as readers should (docs/reference.md): the last
# connection to close checkpoints and removes the WAL under a lock.
sq() { sqlite3 -cmd '.timeout 5000' "$@"; }

# A row and totals no event made; a rebuild must drop it.
plant_bug() {
        sq "$db" "BEGIN;
INSERT INTO order_list VALUES ('zz-bug', 'ORDERED', 5, NULL,
        '2020-01-01T00:00:00.000Z', NULL);
UPDATE order_totals SET orders_placed = orders_placed + 1,
        placed_amount = placed_amount + 5;
INSERT INTO daily_totals VALUES ('2020-01-01', 1, 0, 5, 0);
COMMIT;" || fail "could not plant the bug"
        old_gen=$(sq "$db" 'SELECT generation FROM store_info')
}

# The contract's relations as text (dead letters without received_at).
dump() {
        sq "$db" "SELECT * FROM order_list ORDER BY order_id;
                SELECT * FROM order_totals;
                SELECT * FROM daily_totals ORDER BY day;
                SELECT count(*) FROM processed_events;
                SELECT \"partition\", \"offset\", reason FROM dead_letters
                ORDER BY 1, 2;"
}

name="a live model with a bug"
kcat -P -b "$addr" -t orders -K '|' -l "$tmp/part1.txt" ||
        fail "kcat could not publish"
"$of" project --db "$db" -b "$addr" -g live -e -q "${fast[@]}" \
        2>"$tmp/proj.err" || fail "project -e exited $?"
dump >"$tmp/part1.dump"
plant_bug
ok

# One read transaction per query: generation, whether the bug is there,
# and whether totals equal the sums over order_list.
probe="SELECT (SELECT generation FROM store_info) || '|' ||
    (SELECT count(*) FROM order_list WHERE order_id = 'zz-bug') || '|' ||
    ((SELECT orders_placed FROM order_totals) =
        (SELECT count(placed_at) FROM order_list)
     AND (SELECT placed_amount FROM order_totals) =
        (SELECT ifnull(sum(total), 0) FROM order_list)
     AND (SELECT paid_amount FROM order_totals) =
        (SELECT ifnull(sum(paid_amount), 0) FROM order_list)
     AND (SELECT ifnull(sum(placed_amount), 0) FROM daily_totals) =
        (SELECT placed_amount FROM order_totals));"

start_reader() {
        : >"$tmp/reads"
        (
                while :; do
                        r=$(sqlite3 -cmd ".timeout 2000" "$db" "$probe" \
                                2>&1) || r="error: $r"
                        echo "$r" >>"$tmp/reads"
                        sleep 0.02
                done
        ) &
        reader_pid=$!
}

# check_reads: every read error-free and consistent, and old (old
# generation, bug) until new (new generation, no bug), never a mix, never
# back.
check_reads() {
        kill "$reader_pid" 2>/dev/null
        wait "$reader_pid" 2>/dev/null
        reader_pid=
        new_gen=$(sq "$db" 'SELECT generation FROM store_info')
        [ "$new_gen" != "$old_gen" ] || fail "the generation did not change"
        [ -s "$tmp/reads" ] || fail "the reader never ran"
        ! grep -v '|1$' "$tmp/reads" | head -3 | grep . >&2 ||
                fail "a reader got an error or inconsistent totals (above)"
        awk -F'|' -v old="$old_gen" -v new="$new_gen" '
                $1 == old && $2 == 1 { if (seen_new) { bad = "old after new" }
                                       n_old++; next }
                $1 == new && $2 == 0 { seen_new = 1; n_new++; next }
                { bad = "a mix: " $0 }
                END { if (bad) { print bad; exit 1 }
                      if (!n_old || !n_new) { print "old " n_old ", new " n_new;
                                              exit 1 } }' "$tmp/reads" \
                >"$tmp/order" || fail "$(cat "$tmp/order")"
        echo "# $(wc -l <"$tmp/reads") reads:" \
                "$(grep -c "^$old_gen|" "$tmp/reads") old," \
                "$(grep -c "^$new_gen|" "$tmp/reads") new"
}

name="rebuild while a reader queries"
start_reader
sleep 0.5
"$of" rebuild --db "$db" -b "$addr" >"$tmp/rebuild.out" \
        2>"$tmp/rebuild.err" || fail "rebuild exited $?"
sleep 0.5
check_reads
dump | cmp -s - "$tmp/part1.dump" ||
        fail "the rebuilt model differs from the one projected"
awk '$1 == "orders" && $4 == "-1" { ok = 1 } END { exit !ok }' \
        "$tmp/rebuild.out" || fail "the comparison misses the dropped row"
ok

name="rebuild while a reader queries and a projector runs"
plant_bug
start_reader
fresh "$tmp/proj.err"
"$of" project --db "$db" -b "$addr" -g live "${fast[@]}" \
        2>"$tmp/proj.err" &
proj_pid=$!
for _ in $(seq 200); do
        grep -q 'assigned' "$tmp/proj.err" && break
        sleep 0.1
done
grep -q 'assigned' "$tmp/proj.err" || fail "the projector got no partitions"
# More events while the rebuild runs: part of them before its end offsets,
# part after; the projector must apply whatever the new model lacks.
( sleep 0.3; kcat -P -b "$addr" -t orders -K '|' -l "$tmp/part2.txt" ) &
kcat_pid=$!
"$of" rebuild --db "$db" -b "$addr" >"$tmp/rebuild.out" \
        2>"$tmp/rebuild.err" || fail "rebuild exited $?"
wait "$kcat_pid" || fail "kcat could not publish the second part"
# A projector notices a swap in its next batch or, idle, within 0.5 s.
wait_for 10 "the projector to notice the swap" \
        has_line "$tmp/proj.err" 'the read model was replaced'
# The projector catches up on the new model: every offset applied.
for _ in $(seq 600); do
        n=$(sqlite3 -cmd ".timeout 2000" "$db" \
                'SELECT ifnull(sum(next_offset), 0) FROM partition_offsets')
        [ "$n" -ge "$total" ] && break
        sleep 0.1
done
[ "$n" -eq "$total" ] || fail "applied $n of $total offsets after 60 s"
kill -0 "$proj_pid" 2>/dev/null || fail "the projector did not keep running"
kill -TERM "$proj_pid"
wait "$proj_pid" || fail "the projector exited $? after SIGTERM"
proj_pid=
check_reads
grep -q 'replaced' "$tmp/proj.err" ||
        fail "the projector never noticed the swap"
grep -q 'were deleted' "$tmp/proj.err" &&
        fail "a warning of deleted history where none was deleted"
python3 "$here/gen_stream.py" check "$db" "$tmp" ||
        fail "the final model differs from the independent model"
leftover() { ls "$db".rebuild* >/dev/null 2>&1; }
leftover && fail "the new file was left beside the live one"
grep -q '^orders ' "$tmp/rebuild.out" ||
        fail "no comparison printed: $(head -3 "$tmp/rebuild.out")"
grep -q 'rebuild: .* of .* events (100%)' "$tmp/rebuild.err" ||
        fail "no progress lines on stderr"
ok

name="rebuild -q prints the comparison only"
"$of" rebuild --db "$db" -b "$addr" -q >"$tmp/rebuild.out" \
        2>"$tmp/rebuild.err" || fail "exited $?"
[ ! -s "$tmp/rebuild.err" ] || fail "stderr not empty: $(head -2 "$tmp/rebuild.err")"
awk '$1 == "orders" && $2 == $3 && $4 == "+0" { ok = 1 } END { exit !ok }' \
        "$tmp/rebuild.out" || fail "comparison: $(cat "$tmp/rebuild.out")"
python3 "$here/gen_stream.py" check "$db" "$tmp" || fail "model changed"
ok

name="a rebuild killed part way leaves the live file as it was"
sq "$db" .dump >"$tmp/before.sql"
ORDERFLOW_TEST_EXIT_AFTER_COMMITS=3 "$of" rebuild --db "$db" -b "$addr" \
        --batch-max 1000 -q >/dev/null 2>"$tmp/rebuild.err"
rc=$?
[ "$rc" -eq 99 ] || fail "expected the hook's exit 99, got $rc"
leftover || fail "no half-built file left (killed too late?)"
sq "$db" .dump | cmp -s - "$tmp/before.sql" ||
        fail "the live file changed"
"$of" rebuild --db "$db" -b "$addr" --batch-max 1000 -q \
        >"$tmp/rebuild.out" 2>"$tmp/rebuild.err" || fail "next rebuild $?"
leftover && fail "the next rebuild left the new file"
python3 "$here/gen_stream.py" check "$db" "$tmp" || fail "model changed"
ok

name="SIGINT: a clean stop (exit 0), the live file as it was"
sq "$db" .dump >"$tmp/before.sql"
"$of" rebuild --db "$db" -b "$addr" --batch-max 500 \
        >"$tmp/rebuild.out" 2>"$tmp/rebuild.err" &
rb_pid=$!
for _ in $(seq 100); do
        grep -q 'rebuild: [0-9]* of' "$tmp/rebuild.err" 2>/dev/null && break
        sleep 0.05
done
kill -INT "$rb_pid"
wait "$rb_pid"
rc=$?
[ "$rc" -eq 0 ] || fail "expected exit 0, got $rc"
grep -q 'interrupted; .* is unchanged' "$tmp/rebuild.err" ||
        fail "message: $(tail -1 "$tmp/rebuild.err")"
leftover && fail "the new file was left"
sq "$db" .dump | cmp -s - "$tmp/before.sql" ||
        fail "the live file changed"
ok

name="a second rebuild of the same file is refused"
flock "$db.lock" sleep 5 &
lock_pid=$!
for _ in $(seq 50); do
        flock -n "$db.lock" true || break
        sleep 0.1
done
"$of" rebuild --db "$db" -b "$addr" -q >/dev/null 2>"$tmp/rebuild.err"
rc=$?
kill "$lock_pid" 2>/dev/null
wait "$lock_pid" 2>/dev/null
[ "$rc" -eq 1 ] || fail "expected exit 1, got $rc"
grep -q 'another rebuild of .* is running' "$tmp/rebuild.err" ||
        fail "message: $(cat "$tmp/rebuild.err")"
python3 "$here/gen_stream.py" check "$db" "$tmp" || fail "model changed"
ok

# ---- history deleted by retention ----
name="truncated history is refused"
kill "$broker_pid"
wait "$broker_pid" 2>/dev/null
start_broker --partitions 2 || fail "the second broker printed no address"
if real_kafka; then
        "$kadmin" -b "$addr" create big 2 >/dev/null ||
                fail "kadmin could not create topic big"
fi
# 0 and 1 get 3 MiB each; partition 0 then 4 MiB more: the mock cluster
# keeps about 5 MiB a partition, so 0 loses its start and 1 does not; real
# Kafka deletes partition 0's first 60 when told (DeleteRecords, as
# retention would).
python3 -c '
import json, sys
pad = "x" * 60000
for p, n in ((0, 50), (1, 50), (0, 70)):
    for i in range(n):
        sys.stdout.write("%d|p%d-%d|{\"pad\":\"%s\"}\n" % (p, p, i, pad))
' | while IFS='|' read -r part key value; do
        printf '%s|%s\n' "$key" "$value" >>"$tmp/big$part.txt"
done
kcat -P -b "$addr" -t big -p 0 -K '|' -l "$tmp/big0.txt" &&
        kcat -P -b "$addr" -t big -p 1 -K '|' -l "$tmp/big1.txt" ||
        fail "kcat could not publish"
if real_kafka; then
        "$kadmin" -b "$addr" delete-records big 0 60 >/dev/null ||
                fail "kadmin delete-records failed"
fi
db2=$tmp/big.db
"$of" rebuild --db "$db2" -b "$addr" -t big -q >"$tmp/rebuild.out" \
        2>"$tmp/rebuild.err"
rc=$?
[ "$rc" -eq 1 ] || fail "expected exit 1, got $rc"
# where the mock's retention cut depends on how kcat batched the messages
last=$(sed -n 's/.*history deleted by retention: big \[0\] offsets 0-\([0-9]*\) gone.*/\1/p' \
        "$tmp/rebuild.err")
[ -n "$last" ] || fail "message: $(cat "$tmp/rebuild.err")"
grep -q 'big \[1\]' "$tmp/rebuild.err" &&
        fail "partition 1 named although complete"
[ "$(sq "$db2" 'SELECT count(*) FROM dead_letters')" -eq 0 ] ||
        fail "the live file changed"
echo "# $(cat "$tmp/rebuild.err")"
ok

name="a projector says so too"
"$of" project --db "$tmp/big-proj.db" -b "$addr" -t big -g big -e \
        "${fast[@]}" 2>"$tmp/proj.err" || fail "project -e exited $?"
grep -q "W big \\[0\\]: offsets 0-$last were deleted (retention)" \
        "$tmp/proj.err" || fail "no warning: $(grep W "$tmp/proj.err")"
grep -q 'big \[1\]: offsets' "$tmp/proj.err" && fail "partition 1 warned"
ok

name="--allow-truncated goes ahead and records it"
"$of" rebuild --db "$db2" -b "$addr" -t big -q --allow-truncated \
        >"$tmp/rebuild.out" 2>"$tmp/rebuild.err" || fail "exited $?"
dead=$(sq "$db2" 'SELECT count(*) FROM dead_letters')
kept=$(sq "$db2" "SELECT sum(next_offset) FROM partition_offsets")
first=$(sq "$db2" "SELECT min(\"offset\") FROM dead_letters
        WHERE \"partition\" = 0")
[ "$kept" -eq 170 ] || fail "offsets reach $kept, expected 170"
[ "$first" -eq $((last + 1)) ] || fail "partition 0 starts at $first"
[ "$dead" -eq $((170 - first)) ] || fail "$dead dead letters, first $first"
sq "$db2" 'SELECT truncated FROM store_info' | grep -q 'big \[0\]' ||
        fail "the file does not record the truncation"
ok

name="usage errors exit 2"
"$of" rebuild -b "$addr" 2>"$tmp/err"
[ $? -eq 2 ] && grep -q -- '--db: required' "$tmp/err" || fail "no --db"
"$of" rebuild --db "$db" --bogus 2>"$tmp/err"
[ $? -eq 2 ] && grep -q 'unknown option' "$tmp/err" || fail "bad option"
"$of" rebuild --help | grep -q 'allow-truncated' || fail "--help"
ok
