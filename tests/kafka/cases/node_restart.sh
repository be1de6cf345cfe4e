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

of=${ORDERFLOW:-build/orderflow} # before lib.sh: its $kadmin is beside $of
. "$(dirname "$0")/../../lib.sh"
. "$(dirname "$0")/../lib.sh"
kafka_case node-restart
restarts=${RESTARTS:-3}
app=$tmp/app.db
db=$tmp/rm.db
group=node-restart
logs=(relay.err proj.err writer.err)

name="node restart: writer, relay and projector at work"
start_pipeline "$group"
ok

name="node restart: SIGKILL the node and start it $restarts times mid-work"
hit=0 notes=
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
stop_writer
echo "# $notes"
[ "$hit" -ge "$restarts" ] ||
        fail "only $hit of $restarts kills landed mid-work: $notes"
ok "$hit of $restarts kills landed mid-work, $written rows written"

name="node restart: every row sent, every offset applied, clean stops"
finish_pipeline
ok "$rows rows, $high offsets"

name="node restart: every event on the topic in commit order, the read model exact"
check_outcome
ok "$dups duplicate copies, $late rows of retried orders behind later ones"
