#!/usr/bin/env bash
# Transactions on real Kafka: a transactional producer (kadmin txn) writes
# contract events in several transactions, committed and aborted in turn,
# each spanning every partition, the last one aborted (so every partition
# ends in an aborted batch and its abort marker). `project -e` (librdkafka's
# default isolation.level=read_committed, not overridden by orderflow) must
# end, and the read model must equal that of the committed events only,
# projected from a second topic that holds just them (same partitions, same
# order, no markers); no aborted event id may be in it. `rebuild` gives the
# same model; `status` shows lag 0 though the high watermarks count the
# markers.
set -u
of=${ORDERFLOW:-build/orderflow} # before lib.sh: its $kadmin is beside $of
. "$(dirname "$0")/../../lib.sh"
gen=$(dirname "$0")/../../cli/gen_stream.py
. "$(dirname "$0")/../lib.sh"
kafka_case txn
logs=(proj.err ref.err rebuild.err status.err txn.err)
db=$tmp/rm.db ref=$tmp/ref.db
parts=3 txns=6

name=setup
start_broker -t orders -p "$parts" ||
        fail "the broker printed no address in $broker_wait s"
"$kadmin" -b "$addr" create ref "$parts" >/dev/null || fail "create ref"

# The orders' events only (up to the first rule breaker, key x): valid
# contract JSON, redeliveries and an OrderShipped included.
python3 "$gen" 120 11 "$tmp" >/dev/null || fail "gen_stream.py failed"
awk -F'|' '$1 == "x" { exit } { print }' "$tmp/stream.txt" >"$tmp/valid.txt"

# Order o-N goes to partition N % parts in transaction int(N / 20) (20
# orders each: every transaction spans every partition); odd transactions
# are aborted, the last one (txns - 1) among them. The committed lines go
# to committed.P (P: partition), in log order.
awk -F'|' -v parts="$parts" -v txns="$txns" -v dir="$tmp" '
{ n = substr($1, 3) + 0; t = int(n / 20); p = n % parts
  line[t] = line[t] "send " p " " $1 " " substr($0, length($1) + 2) "\n"
  if (t % 2 == 0) print > (dir "/committed." p)
  else print substr($0, length($1) + 2) > (dir "/aborted.txt") }
END { f = dir "/txn.in"
      for (t = 0; t < txns; t++)
        printf "begin\n%s%s\n", line[t], (t % 2 ? "abort" : "commit") > f }' "$tmp/valid.txt"
# Every transaction spans every partition, so that each partition ends in
# an aborted batch and its marker.
[ "$(grep -c '^begin$' "$tmp/txn.in")" -eq "$txns" ] ||
        fail "not $txns transactions"
spans=$(awk '/^begin$/ { if (n) print n; delete seen; n = 0 }
        /^send / && !seen[$2]++ { n++ } END { print n }' "$tmp/txn.in" |
        sort -u)
[ "$spans" = "$parts" ] || fail "a transaction misses a partition"
tail -1 "$tmp/txn.in" | grep -q '^abort$' || fail "the last is not aborted"
ok

name="kadmin txn: $txns transactions over $parts partitions, half aborted"
"$kadmin" -b "$addr" txn orders <"$tmp/txn.in" >"$tmp/txn.out" \
        2>"$tmp/txn.err" || fail "kadmin txn exited $?"
[ "$(grep -c '^committed [1-9]' "$tmp/txn.out")" -eq $((txns / 2)) ] &&
        [ "$(grep -c '^aborted [1-9]' "$tmp/txn.out")" -eq $((txns / 2)) ] ||
        fail "expected $((txns / 2)) commits and aborts: $(tr '\n' ' ' \
                <"$tmp/txn.out")"
for p in $(seq 0 $((parts - 1))); do
        kcat -P -b "$addr" -t ref -p "$p" -K '|' -l "$tmp/committed.$p" ||
                fail "kcat could not publish to ref [$p]"
done
ok

name="orderflow does not override isolation.level"
"$of" project --db "$tmp/conf.db" -b "$addr" -e -v -X debug=conf \
        "${fast[@]}" -g conf 2>"$tmp/conf.err" ||
        fail "project -e -X debug=conf exited $?"
# debug=conf lists the properties set to other than the defaults.
grep -q 'CONF: .*auto.offset.reset = error' "$tmp/conf.err" ||
        fail "debug=conf listed no consumer configuration (test is blind)"
! grep 'CONF: .*isolation.level = ' "$tmp/conf.err" |
        grep -qv 'isolation.level = read_committed$' ||
        fail "isolation.level: $(grep -m1 'isolation.level' "$tmp/conf.err")"
ok

# dump DB: the read model's relations, canonical; processed_events by id.
dump() {
        sq "$1" 'SELECT * FROM order_list ORDER BY order_id;
                 SELECT * FROM order_totals;
                 SELECT * FROM daily_totals ORDER BY day;
                 SELECT event_id FROM processed_events ORDER BY event_id;
                 SELECT count(*) FROM dead_letters;'
}

name="the reference: committed events only, projected from topic ref"
timeout 120 "$of" project --db "$ref" -b "$addr" -t ref -g ref -e -q \
        "${fast[@]}" 2>"$tmp/ref.err" || fail "project -e ref exited $?"
dump "$ref" >"$tmp/ref.dump" || fail "dump ref"
[ "$(sq "$ref" 'SELECT orders_placed FROM order_totals')" -gt 0 ] ||
        fail "the reference holds no order"
ok

name="project -e ends on partitions that end in aborted transactions"
t0=$(date +%s)
timeout 120 "$of" project --db "$db" -b "$addr" -g txn -e \
        "${fast[@]}" 2>"$tmp/proj.err"
rc=$?
[ "$rc" -eq 124 ] && fail "project -e did not end within 120 s (hangs at \
the transaction markers?); stored: $(sq "$db" \
'SELECT group_concat("partition" || ":" || next_offset) FROM partition_offsets'); \
watermarks: $("$kadmin" -b "$addr" watermarks orders | tr '\n' ' ')"
[ "$rc" -eq 0 ] || fail "project -e exited $rc"
ok "$(($(date +%s) - t0)) s"

name="the read model equals the committed events' model"
dump "$db" >"$tmp/db.dump" || fail "dump"
diff "$tmp/ref.dump" "$tmp/db.dump" >"$tmp/diff" ||
        fail "differs from the reference: $(head -5 "$tmp/diff" | tr '\n' ' ')"
sed 's/.*"id": *"\([^"]*\)".*/\1/' "$tmp/aborted.txt" | sort -u \
        >"$tmp/aborted.ids"
[ -s "$tmp/aborted.ids" ] || fail "no aborted id (test is blind)"
leaked=$(sq "$db" 'SELECT event_id FROM processed_events' | sort |
        comm -12 - "$tmp/aborted.ids" | head -3)
[ -z "$leaked" ] || fail "aborted events applied: $leaked"
ok

# lag_zero FILE: status --json output with lag 0 and every partition's too.
lag_zero() {
        python3 -c 'import json, sys
s = json.load(open(sys.argv[1]))
ok = s["lag"] == 0 and s["problem"] is None and \
    all(p["lag"] == 0 for p in s["partitions"]) and len(s["partitions"]) == int(sys.argv[2])
sys.exit(0 if ok else 1)' "$1" "$parts"
}

name="status: lag 0 though the high watermarks count the markers"
"$of" status --db "$db" -b "$addr" --json >"$tmp/status.json" \
        2>"$tmp/status.err" || fail "status exited $?: $(cat "$tmp/status.json")"
lag_zero "$tmp/status.json" || fail "not lag 0: $(cat "$tmp/status.json")"
ok

name="rebuild from the transactional topic: the same model, lag 0"
timeout 120 "$of" rebuild --db "$db" -b "$addr" -q >/dev/null \
        2>"$tmp/rebuild.err" || fail "rebuild exited $?"
dump "$db" >"$tmp/db.dump" || fail "dump"
diff "$tmp/ref.dump" "$tmp/db.dump" >"$tmp/diff" ||
        fail "differs from the reference: $(head -5 "$tmp/diff" | tr '\n' ' ')"
"$of" status --db "$db" -b "$addr" --json >"$tmp/status.json" \
        2>"$tmp/status.err" || fail "status exited $?: $(cat "$tmp/status.json")"
lag_zero "$tmp/status.json" || fail "not lag 0: $(cat "$tmp/status.json")"
ok
