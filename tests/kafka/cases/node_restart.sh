#!/usr/bin/env bash
# A one-node Kafka cluster SIGKILLed and started again on its data RESTARTS
# times (3) while the whole pipeline works: a writer (outbox.py) keeps
# placing and paying orders, one relay publishes them, one projector
# applies them (small fetches, 100 ms broker latency). Each kill comes once
# both have been seen making progress since the last restart (SENT count
# and applied offsets grown), then a burst of 3,000 outbox rows, once both
# are behind (rows pending, 300 fewer offsets applied than rows SENT); it
# landed mid-work when rows committed before it were still unsent and
# offsets that were on the topic before it were still unapplied, both
# measured once the node is dead; every kill must land. Then the writer
# stops, the relay sends every row, the projector applies up to the high
# watermarks, both stop on SIGTERM with exit 0, and: every outbox event is
# on the topic as stored (duplicates allowed, counted), the first copies of
# each partition stand in commit (seq) order, except where a row of the
# order failed and was retried (the contract lets it fall behind other
# orders, never its own), and the read model equals the model computed from the
# outbox (outbox.py model). Only meaningful on real Kafka.
set -u

of=${ORDERFLOW:-build/orderflow}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/orderflow-node-restart.XXXXXX") || exit 1
. "$(dirname "$0")/../../lib.sh"
outbox=$(dirname "$0")/../../faults/outbox.py
restarts=${RESTARTS:-3}
app=$tmp/app.db
rm=$tmp/rm.db
group=node-restart
fast=(-X session.timeout.ms=6000 -X heartbeat.interval.ms=500)
pids=()
broker_pid=
name=setup
ok() { echo "ok - $name${1:+ ($1)}"; }

cleanup() {
        local p
        for p in "${pids[@]}"; do
                kill -9 "$p" 2>/dev/null
        done
        # broker.sh stops its JVMs and removes its folder on SIGTERM.
        [ -n "$broker_pid" ] && kill -TERM "$broker_pid" 2>/dev/null
        exec 7>&- 2>/dev/null
        wait 2>/dev/null
        rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! real_kafka; then
        echo "ok - node restart # SKIP: needs real Kafka"
        exit 0
fi
[ -x "$of" ] || fail "no binary at $of (run make first)"
[ -x "$kadmin" ] || fail "no kadmin at $kadmin (make test-kafka builds it)"
for t in kcat sqlite3 python3; do
        command -v "$t" >/dev/null || fail "$t is needed"
done

alive() { kill -0 "$1" 2>/dev/null; }
app_sql() { sq "$app" "$1"; }
pend() { app_sql "SELECT count(*) FROM outbox_messages WHERE status = 'PENDING'"; }
sent() { app_sql "SELECT count(*) FROM outbox_messages WHERE status = 'SENT'"; }
# applied: the offsets the read model has applied (sum over partitions).
applied() {
        sq "$rm" 'SELECT ifnull(sum(next_offset), 0) FROM partition_offsets' \
                2>/dev/null || echo -1
}
# highs: the sum of the topic's high watermarks (fails with the broker).
highs() {
        "$kadmin" -T 10 -b "$addr" watermarks orders |
                awk '{ s += $3 } END { print s + 0 }'
}
# working: relay and projector are alive (fail otherwise), and since the
# last restart the relay has sent more than $1 rows and the projector
# applied more than $2 offsets.
working() {
        alive "$relay_pid" ||
                fail "the relay exited by itself: $(tail -3 "$tmp/relay.err")"
        alive "$proj_pid" ||
                fail "the projector exited by itself: $(tail -3 "$tmp/proj.err")"
        [ "$(sent)" -gt "$1" ] && [ "$(applied)" -gt "$2" ]
}

name="node restart: writer, relay and projector at work"
start_broker_ctl -p 4
# Answers 100 ms late: batches stay in flight, the pipeline has work in
# hand whenever the node dies, whatever the machine's speed.
ctl rtt 1 100
"$of" place --db "$app" --order o-seed --total 1 >/dev/null ||
        fail "could not create $app"
rm -f "$tmp/writer.stop"
python3 "$outbox" write "$app" 1 "$tmp/writer.stop" \
        >"$tmp/writer.out" 2>"$tmp/writer.err" &
writer_pid=$!
pids+=("$writer_pid")
"$of" relay --db "$app" -b "$addr" 2>"$tmp/relay.err" &
relay_pid=$!
pids+=("$relay_pid")
# Small fetches (about 200 messages a 0.1 s round trip): a burst of orders
# leaves the projector seconds behind the relay.
"$of" project --db "$rm" -b "$addr" -g "$group" "${fast[@]}" \
        -X max.partition.fetch.bytes=16000 -X fetch.max.bytes=64000 \
        -X message.max.bytes=64000 \
        2>"$tmp/proj.err" &
proj_pid=$!
pids+=("$proj_pid")
wait_for 120 "the relay and the projector to work" working 100 100
ok

name="node restart: SIGKILL the node and start it $restarts times mid-work"
hit=0 notes=
# behind: the relay has rows pending and the projector has applied fewer
# offsets than the relay has rows SENT (the topic holds at least that
# many: duplicates only add), by more than 300.
behind() {
        [ "$(pend)" -gt 0 ] && [ $(($(sent) - $(applied))) -gt 300 ]
}
for i in $(seq "$restarts"); do
        # Progress since the last restart: both found the node again.
        s0=$(sent) a0=$(applied)
        wait_for 120 "progress before kill $i" working \
                $((s0 + 50 + RANDOM % 200)) $((a0 + 50 + RANDOM % 200))
        # A burst of 3,000 rows (2,000 orders, 1,000 paid) that the small
        # fetches take the projector seconds to catch up with.
        python3 "$outbox" fill "$app" $((i * 1000000)) $((i * 1000000 + 1999)) ||
                fail "could not add a burst of orders"
        wait_for 60 "work in hand before kill $i" behind
        last=$(app_sql 'SELECT max(seq) FROM outbox_messages')
        acked=$(sent)
        t0=$(date +%s%N)
        ctl kill 1
        # Once the node is dead: rows committed before the kill still
        # unsent, and fewer offsets applied than rows SENT before it (all
        # on the topic): both had work in hand.
        unsent=$(app_sql "SELECT count(*) FROM outbox_messages
                          WHERE status = 'PENDING' AND seq <= $last")
        unapplied=$((acked - $(applied)))
        [ "$unsent" -gt 0 ] && [ "$unapplied" -gt 0 ] && hit=$((hit + 1))
        ctl start 1
        down_ms=$((($(date +%s%N) - t0) / 1000000))
        notes="$notes${notes:+; }kill $i: $unsent unsent, >=$unapplied unapplied, down ${down_ms} ms"
done
# Progress after the last restart too.
s0=$(sent) a0=$(applied)
wait_for 120 "progress after the last restart" working $((s0 + 50)) $((a0 + 50))
touch "$tmp/writer.stop"
wait "$writer_pid" || fail "the writer exited $?: $(tail -2 "$tmp/writer.err")"
echo "# $notes"
[ "$hit" -ge "$restarts" ] ||
        fail "only $hit of $restarts kills landed mid-work: $notes"
ok "$hit of $restarts kills landed mid-work, $(cat "$tmp/writer.out") rows written"

name="node restart: every row sent, every offset applied, clean stops"
ctl rtt 1 0
rows=$(app_sql 'SELECT count(*) FROM outbox_messages')
all_sent() {
        alive "$relay_pid" ||
                fail "the relay exited by itself: $(tail -3 "$tmp/relay.err")"
        [ "$(sent)" -eq "$rows" ]
}
wait_for 120 "all $rows rows SENT (status: $(pend) pending)" all_sent
high=$(highs) || fail "no watermarks"
all_applied() {
        alive "$proj_pid" ||
                fail "the projector exited by itself: $(tail -3 "$tmp/proj.err")"
        [ "$(applied)" -eq "$high" ]
}
wait_for 120 "the projector to apply $high offsets (at $(applied))" all_applied
for p in relay proj; do
        eval "pid=\$${p}_pid"
        kill -TERM "$pid"
        wait_for 15 "$p to stop on SIGTERM" eval '! alive $pid'
        wait "$pid" || fail "$p exited $? after SIGTERM: $(tail -3 "$tmp/$p.err")"
done
pids=()
ok "$rows rows, $high offsets"

name="node restart: every event on the topic, in commit order per partition"
kcat -C -b "$addr" -t orders -e -q -o beginning -f '%p\t%o\t%k\t%s\n' \
        >"$tmp/topic.tsv" 2>"$tmp/kcat.err" || fail "kcat: $(cat "$tmp/kcat.err")"
dups=$(python3 "$outbox" topic "$app" "$tmp/topic.tsv" 2>"$tmp/check.err") ||
        fail "outbox.py topic: $(tail -3 "$tmp/check.err")"
# The first copies of each partition in seq order; a row may stand after
# a later row of another order only if it or an earlier row of its order
# failed and was retried (attempts > 0): the contract lets a failed row
# hold back its own order alone. Prints the count of such rows.
late=$(python3 - "$app" "$tmp/topic.tsv" <<'PY' 2>"$tmp/check.err"
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
rows = {r[0]: r[1:] for r in db.execute(
    'SELECT id, seq, attempts, aggregate_id FROM outbox_messages')}
msgs = [l.rstrip('\n').split('\t', 3) for l in open(sys.argv[2])]
msgs.sort(key=lambda m: (int(m[0]), int(m[1])))
seen, top, per_order, late, failed_order = set(), {}, {}, 0, {}
for p, o, key, value in msgs:
    eid = json.loads(value)['id']
    if eid in seen:
        continue
    seen.add(eid)
    seq, attempts, order = rows[eid]
    failed_order[order] = failed_order.get(order, 0) or attempts > 0
    last = per_order.get(order)
    assert last is None or (last[0] == p and last[1] < seq), \
        'order %s: seq %d at %s:%s after its seq %s' % (order, seq, p, o, last)
    per_order[order] = (p, seq)
    if seq < top.get(p, 0):
        assert failed_order[order], 'partition %s offset %s: seq %d ' \
            'after seq %d (no row of its order failed)' % (p, o, seq, top[p])
        late += 1
    top[p] = max(top.get(p, 0), seq)
print(late)
PY
) || fail "commit order: $(tail -3 "$tmp/check.err")"
ok "$dups duplicate copies, $late rows of retried orders behind later ones"

name="node restart: the read model is exact"
python3 "$outbox" model "$app" "$rm" >"$tmp/check.err" 2>&1 ||
        fail "read model differs from the outbox: $(tail -3 "$tmp/check.err")"
ok
