#!/usr/bin/env bash
# A three-node Kafka cluster (6 partitions, replication 3,
# min.insync.replicas 2) loses a node twice while the whole pipeline works:
# a writer (outbox.py) keeps placing and paying orders, a relay (acks=all)
# publishes them, two projectors in one group share the partitions and the
# one read-model file (docs/operations.md: failover). First the leader of the busiest
# partition is SIGKILLed, then, once it is back, the group's coordinator.
# Each kill comes after a burst of 3,000 outbox rows, during which the
# projectors are paused (SIGSTOP, a few s), once the relay has rows pending
# and the projectors are over 2,000 offsets below the high watermarks; they
# go on (SIGCONT) just before the kill. A kill landed mid-work when, once
# the node is dead, rows committed before it are still unsent and offsets
# below the high watermarks read before it still unapplied; both must
# land. With the node down the work must go on: rows SENT and every
# partition applied past its high watermark of before the kill; then the
# node is started again. Then the
# writer stops, every row is SENT, every offset applied, relay and
# projectors stop on SIGTERM with exit 0, and: every outbox event is on the
# topic as stored (duplicates allowed, counted), each partition's first
# copies in commit (seq) order except where a row of the order failed and
# was retried (never behind its own order), and the read model equals the model
# computed from the outbox (outbox.py model). Only meaningful on real Kafka.
set -u

of=${ORDERFLOW:-build/orderflow} # before lib.sh: its $kadmin is beside $of
. "$(dirname "$0")/../../lib.sh"
. "$(dirname "$0")/../lib.sh"
kafka_case cluster
app=$tmp/app.db
db=$tmp/rm.db
group=cluster
parts=6
logs=(relay.err a.err b.err writer.err)
t_start=$(date +%s)
ok() { echo "ok - $name${1:+ ($1)} [$(($(date +%s) - t_start)) s]"; }

# offset_of P: the read model's next offset of partition P (0: none yet).
offset_of() {
        sq "$db" "SELECT ifnull(max(next_offset), 0) FROM partition_offsets
                  WHERE \"partition\" = $1" 2>/dev/null || echo -1
}
# alive_all: relay and both projectors alive, or fail.
alive_all() {
        alive "$relay_pid" ||
                fail "the relay exited by itself: $(tail -3 "$tmp/relay.err")"
        for p in a b; do
                eval "pid=\$proj_$p"
                alive "$pid" || fail "projector $p exited by itself:" \
                        "$(tail -3 "$tmp/$p.err")"
        done
}
# working S A: since the last look the relay sent more than S rows and
# the projectors applied more than A offsets.
working() {
        alive_all
        [ "$(sent)" -gt "$1" ] && [ "$(applied)" -gt "$2" ]
}
# behind: rows pending, and the projectors over 2,000 offsets below the
# high watermarks (read into $tmp/hw).
behind() {
        alive_all
        local pending high done
        pending=$(pend)
        watermarks >"$tmp/hw" 2>"$tmp/kadmin.err" ||
                { why="kadmin: $(tail -1 "$tmp/kadmin.err")"; return 1; }
        # After the watermarks (they take round trips): a fair comparison.
        done=$(applied)
        high=$(awk '{ s += $3 } END { print s + 0 }' "$tmp/hw")
        why="$pending pending, high watermarks $high, $done applied"
        [ "$pending" -gt 0 ] && [ $((high - done)) -gt 2000 ]
}
# resumed S: with the node down, the relay sent more than S rows and every
# partition is applied past its high watermark of before the kill ($hw).
resumed() {
        local p
        alive_all
        [ "$(sent)" -gt "$1" ] || return 1
        for p in $(seq 0 $((parts - 1))); do
                [ "$(offset_of "$p")" -gt "${hw[p]}" ] || return 1
        done
}
assigned() { grep -o 'assigned orders \[[0-9]*\]' "$1" | sort -u | wc -l; }
both_assigned() {
        alive_all
        [ "$(assigned "$tmp/a.err")" -ge 1 ] && [ "$(assigned "$tmp/b.err")" -ge 1 ]
}

name="cluster: writer, relay and two projectors at work on 3 nodes"
start_broker_ctl --nodes 3 -p "$parts"
# Answers 100 ms late: batches stay in flight, the pipeline has work in
# hand whenever a node dies, whatever the machine's speed.
for n in 1 2 3; do
        ctl rtt "$n" 100
done
"$of" place --db "$app" --order o-seed --total 1 >/dev/null ||
        fail "could not create $app"
start_writer "$app" 1
"$of" relay --db "$app" -b "$addr" -X acks=all 2>"$tmp/relay.err" &
relay_pid=$!
# Two projectors, one group, one file, small fetches.
for p in a b; do
        "$of" project --db "$db" -b "$addr" -g "$group" "${fast[@]}" \
                -X max.partition.fetch.bytes=2000 -X fetch.max.bytes=8000 \
                -X message.max.bytes=8000 2>"$tmp/$p.err" &
        eval "proj_$p=\$!"
done
wait_for 120 "both projectors to get partitions" both_assigned
wait_for 120 "the relay and the projectors to work" working 100 100
ok "a has $(assigned "$tmp/a.err"), b $(assigned "$tmp/b.err") partitions"

# fault I WHAT NODE-COMMAND: a burst of orders, then once both are behind
# SIGKILL the node NODE-COMMAND prints (run just before the kill); count
# it landed when work was in hand; wait until the work goes on without the
# node; start it again. Sets node.
hit=0 notes=
fault() {
        local i=$1 what=$2 last s_kill p unsent unapplied after high t0 res_ms
        shift 2
        # Which node, first: the kill must follow the look at the work.
        node=$("$@") || fail "no $what"
        # The projectors keep up within a round trip: to be sure they have
        # work in hand at the kill, they are paused (SIGSTOP, shorter than
        # their session) while a burst of 3,000 rows (2,000 orders, 1,000
        # paid) reaches the topic, and go on just before the kill.
        kill -STOP "$proj_a" "$proj_b"
        python3 "$outbox" fill "$app" $((i * 1000000)) $((i * 1000000 + 1999)) ||
                fail "could not add a burst of orders"
        wait_for 30 "work in hand before the $what's kill" behind
        hw=()
        high=0
        while read -r p _ h; do
                hw[p]=$h
                high=$((high + h))
        done <"$tmp/hw"
        [ "${#hw[@]}" -eq "$parts" ] || fail "watermarks: $(cat "$tmp/hw")"
        kill -CONT "$proj_a" "$proj_b"
        last=$(app_sql 'SELECT max(seq) FROM outbox_messages')
        # Offsets below the high watermarks unapplied just before the
        # kill, and (what counts) once the node is dead.
        unapplied=$((high - $(applied)))
        t0=$(date +%s%N)
        ctl kill "$node"
        s_kill=$(sent)
        after=$((high - $(applied)))
        # The relay, once the node is dead: rows committed before the kill
        # still unsent.
        unsent=$(app_sql "SELECT count(*) FROM outbox_messages
                          WHERE status = 'PENDING' AND seq <= $last")
        [ "$unsent" -gt 0 ] && [ "$after" -gt 0 ] && hit=$((hit + 1))
        wait_for 120 "the work to go on without the $what (node $node)" \
                resumed $((s_kill + 100))
        res_ms=$((($(date +%s%N) - t0) / 1000000))
        ctl start "$node"
        notes="$notes${notes:+; }$what node $node: $unsent unsent,\
 $unapplied unapplied ($after once dead), resumed in $res_ms ms"
}
# busiest: the leader of the partition with the most offsets unapplied.
busiest() {
        local p best=0 most=-1 left h
        watermarks >"$tmp/hw" || return 1
        while read -r p _ h; do
                hw[p]=$h
        done <"$tmp/hw"
        for p in $(seq 0 $((parts - 1))); do
                left=$((hw[p] - $(offset_of "$p")))
                [ "$left" -gt "$most" ] && most=$left best=$p
        done
        "$kadmin" -T 20 -b "$addr" leader orders "$best"
}

name="cluster: SIGKILL a busy partition's leader, then the group coordinator"
fault 1 "leader" busiest
s0=$(sent) a0=$(applied)
wait_for 120 "progress after the leader's restart" working \
        $((s0 + 100)) $((a0 + 100))
fault 2 "coordinator" "$kadmin" -T 20 -b "$addr" coordinator "$group"
s0=$(sent) a0=$(applied)
wait_for 120 "progress after the coordinator's restart" working \
        $((s0 + 100)) $((a0 + 100))
stop_writer
echo "# $notes"
[ "$hit" -ge 2 ] || fail "only $hit of 2 kills landed mid-work: $notes"
ok "2 of 2 kills landed mid-work, $written rows written"

name="cluster: every row sent, every offset applied, clean stops"
for n in 1 2 3; do
        ctl rtt "$n" 0
done
rows=$(app_sql 'SELECT count(*) FROM outbox_messages')
all_sent() {
        alive_all
        [ "$(sent)" -eq "$rows" ]
}
wait_for 120 "all $rows rows SENT ($(pend) pending)" all_sent
high=$(highs) || fail "no watermarks"
all_applied() {
        alive_all
        [ "$(applied)" -eq "$high" ]
}
wait_for 120 "the projectors to apply $high offsets (at $(applied))" all_applied
for p in relay_pid proj_a proj_b; do
        eval "pid=\$$p"
        kill -TERM "$pid"
done
for p in relay_pid proj_a proj_b; do
        eval "pid=\$$p"
        wait_for 15 "$p to stop on SIGTERM" eval '! alive $pid'
        wait "$pid" || fail "$p exited $? after SIGTERM"
done
ok "$rows rows, $high offsets"

name="cluster: every event on the topic in commit order, the read model exact"
check_outcome
ok "$dups duplicate copies, $late rows of retried orders behind later ones"
