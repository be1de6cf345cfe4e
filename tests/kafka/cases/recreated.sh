#!/usr/bin/env bash
# A topic deleted and created again under a running projector, on real
# Kafka: the projector (not -e) has applied a stream; the topic is deleted
# (kadmin delete), created again with as many partitions, and a few events
# (fewer than the read model stored in each partition) are published to it.
# The projector must stop with exit 1 and one line naming the partitions
# and the remedy `orderflow rebuild` (docs/operations.md, "When the topic no longer
# matches the read model"), having applied nothing of the new topic;
# `status` says so with exit 1; `rebuild` mends it: the new model equals
# gen_stream.py's model of the new topic's events, and status is lag 0.
set -u
of=${ORDERFLOW:-build/orderflow} # before lib.sh: its $kadmin is beside $of
. "$(dirname "$0")/../../lib.sh"
gen=$(dirname "$0")/../../cli/gen_stream.py
. "$(dirname "$0")/../lib.sh"
kafka_case recreated
logs=(proj.err status.err rebuild.err check.err)
db=$tmp/rm.db parts=3

name=setup
start_broker -t orders -p "$parts" ||
        fail "the broker printed no address in $broker_wait s"
mkdir "$tmp/old" "$tmp/new"
python3 "$gen" 400 5 "$tmp/old" >/dev/null &&
        python3 "$gen" 3 6 "$tmp/new" >/dev/null || fail "gen_stream.py failed"
total=$(wc -l <"$tmp/old/stream.txt")
ok

all_applied() {
        alive "$proj_pid" || fail "the projector exited by itself"
        [ "$(applied)" -eq "$total" ]
}
# dump: the read model's relations and offsets (what the projector writes).
dump() {
        sq "$db" 'SELECT * FROM order_list ORDER BY order_id;
                  SELECT * FROM order_totals;
                  SELECT count(*) FROM processed_events;
                  SELECT count(*) FROM dead_letters;
                  SELECT * FROM partition_offsets ORDER BY "partition";'
}

name="a running projector applies the stream"
kcat -P -b "$addr" -t orders -K '|' -l "$tmp/old/stream.txt" ||
        fail "kcat could not publish"
"$of" project --db "$db" -b "$addr" -g recreated "${fast[@]}" \
        2>"$tmp/proj.err" &
proj_pid=$!
wait_for 60 "all $total offsets applied" all_applied
python3 "$gen" check "$db" "$tmp/old" >"$tmp/check.err" 2>&1 ||
        fail "the first model differs: $(head -5 "$tmp/check.err")"
dump >"$tmp/before.txt" || fail "dump"
ok

name="the topic deleted, created again, a few events published"
"$kadmin" -b "$addr" delete orders >/dev/null || fail "kadmin delete"
"$kadmin" -b "$addr" create orders "$parts" >/dev/null || fail "kadmin create"
kcat -P -b "$addr" -t orders -K '|' -l "$tmp/new/stream.txt" ||
        fail "kcat could not publish to the new topic"
# Fewer than the read model holds in each partition: the case offsets tell.
"$kadmin" -b "$addr" watermarks orders >"$tmp/new.wm" || fail "watermarks"
while read -r p _ high; do
        [ "$high" -lt "$(sq "$db" "SELECT next_offset FROM partition_offsets
                WHERE \"partition\" = $p")" ] ||
                fail "the new [$p] has $high offsets, not fewer than stored"
done <"$tmp/new.wm"
ok

name="the projector stops: exit 1, one line naming the partitions and rebuild"
wait_for 60 "the projector to stop" eval '! alive $proj_pid'
wait "$proj_pid"
rc=$?
proj_pid=
[ "$rc" -eq 1 ] || fail "exit $rc, expected 1"
line=$(grep 'ahead of topic orders' "$tmp/proj.err")
[ "$(grep -c 'ahead of topic orders' "$tmp/proj.err")" -eq 1 ] ||
        fail "not one line 'the read model is ahead of topic orders: ...'"
# (A fetch out of range stops it at the first partition that meets one:
# the line may name that one only.)
echo "$line" | grep -q '\[[0-9]\] next offset [0-9]*, end [0-9]*' ||
        fail "the line names no partition with its offsets: $line"
case $line in *"orderflow rebuild"*) ;;
*) fail "the line does not name the remedy 'orderflow rebuild': $line" ;;
esac
dump | cmp -s - "$tmp/before.txt" ||
        fail "the read model changed: the new topic was applied"
ok

name="status: exit 1, problem says the read model is ahead in each partition"
"$of" status --db "$db" -b "$addr" --json >"$tmp/status.json" \
        2>"$tmp/status.err"
rc=$?
[ "$rc" -eq 1 ] || fail "exit $rc, expected 1: $(cat "$tmp/status.json")"
python3 -c 'import json, sys
s = json.load(open(sys.argv[1]))
ok = s["problem"] and "ahead" in s["problem"] and all(
    "[%d] next offset" % p in s["problem"] for p in range(int(sys.argv[2])))
sys.exit(0 if ok else 1)' \
        "$tmp/status.json" "$parts" ||
        fail "no problem naming every partition: $(cat "$tmp/status.json")"
ok

name="rebuild mends it: the new topic's model, status lag 0"
timeout 120 "$of" rebuild --db "$db" -b "$addr" -q >/dev/null \
        2>"$tmp/rebuild.err" || fail "rebuild exited $?"
python3 "$gen" check "$db" "$tmp/new" >"$tmp/check.err" 2>&1 ||
        fail "the rebuilt model differs: $(head -5 "$tmp/check.err")"
"$of" status --db "$db" -b "$addr" --json >"$tmp/status.json" \
        2>"$tmp/status.err" || fail "status exited $?: $(cat "$tmp/status.json")"
grep -q '"lag":0,' "$tmp/status.json" ||
        fail "not lag 0: $(cat "$tmp/status.json")"
ok
