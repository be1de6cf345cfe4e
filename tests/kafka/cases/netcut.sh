#!/usr/bin/env bash
# A one-node Kafka cluster cut off from its clients, then hung, while the
# whole pipeline works: a writer (outbox.py) keeps placing and paying
# orders, one relay publishes them, one projector applies them (small
# fetches, the node answering 100 ms late, so that work is in hand).
# First the clients' network to the node is cut (broker.sh `cut 1`: open
# connections closed, new ones unanswered), then the node's JVM is
# stopped (SIGSTOP: a hung broker whose connections stay open and
# silent). Each fault comes once both are seen making progress and then,
# after a burst of 3,000 rows, behind (rows pending, 300 fewer offsets
# applied than rows SENT); it lasts until 1,500 more rows are pending than
# as it began (seconds at the writer's pace); it landed when rows were pending and offsets unapplied as it
# began. The relay's delivery deadline is 3 s, shorter than each fault:
# it purges what is on its way, in flight too. After each, the work must
# go on by itself. Then the writer
# stops, every row is SENT, every offset applied, both stop on SIGTERM
# with exit 0, and: every outbox event is on the topic as stored
# (duplicates allowed, counted), each partition's first copies in commit
# (seq) order except rows of retried orders, and the read model equals
# the model computed from the outbox (outbox.py model). Only meaningful
# on real Kafka.
set -u

of=${ORDERFLOW:-build/orderflow} # before lib.sh: its $kadmin is beside $of
. "$(dirname "$0")/../../lib.sh"
. "$(dirname "$0")/../lib.sh"
kafka_case netcut
app=$tmp/app.db
db=$tmp/rm.db
logs=(relay.err proj.err writer.err)
# A delivery deadline shorter than the faults: the relay purges what is
# on its way, in flight too (a hung node), and the order must still hold.
relay_args=(-X message.timeout.ms=3000)

# held N: the writer has committed more than N rows the relay has not sent.
held() {
        local p
        p=$(pend)
        why="$p rows pending"
        [ "$p" -gt "$1" ]
}

name="netcut: writer, relay and projector at work"
start_pipeline netcut
ok

hit=0 notes=
# fault I BEGIN END: BEGIN the fault on node 1 once both work and are
# behind after a burst, hold it until 1,500 rows wait behind it, END it,
# and wait for the work to go on.
fault() {
        local s0 a0 pending high unapplied t0 ms
        s0=$(sent) a0=$(applied)
        wait_for 60 "progress before '$2'" working $((s0 + 50)) $((a0 + 50))
        python3 "$outbox" fill "$app" $(($1 * 1000000)) \
                $(($1 * 1000000 + 1999)) ||
                fail "could not add a burst of orders"
        wait_for 60 "work in hand before '$2'" behind
        shift
        pending=$(pend)
        high=$(highs) || fail "no watermarks"
        unapplied=$((high - $(applied)))
        t0=$(date +%s%N)
        ctl "$1" 1
        [ "$pending" -gt 0 ] && [ "$unapplied" -gt 0 ] && hit=$((hit + 1))
        wait_for 120 "1,500 more rows held back by '$1'" held \
                $((pending + 1500))
        ms=$((($(date +%s%N) - t0) / 1000000))
        ctl "$2" 1
        s0=$(sent) a0=$(applied)
        t0=$(date +%s%N)
        wait_for 120 "the work to go on after '$2'" working \
                $((s0 + 1500)) $((a0 + 1500))
        notes="$notes${notes:+; }$1: $pending pending, $unapplied unapplied\
 at its start, held ${ms} ms, 1,500 rows more sent and applied\
 $((($(date +%s%N) - t0) / 1000000)) ms after '$2'"
}

name="netcut: the clients' network cut and healed mid-work"
fault 1 cut heal
ok

name="netcut: the node hung (SIGSTOP) and continued mid-work"
fault 2 stop cont
stop_writer
echo "# $notes"
[ "$hit" -ge 2 ] || fail "only $hit of 2 faults landed mid-work: $notes"
ok "2 of 2 faults landed mid-work, $written rows written"

name="netcut: every row sent, every offset applied, clean stops"
finish_pipeline
ok "$rows rows, $high offsets"

name="netcut: every event on the topic in commit order, the read model exact"
check_outcome
ok "$dups duplicate copies, $late rows of retried orders behind later ones"
