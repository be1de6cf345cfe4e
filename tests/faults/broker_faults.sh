#!/usr/bin/env bash
# Broker faults injected into a 3-broker embedded cluster through its
# stdin (see `orderflow broker --help`) while a relay and a projector run:
# Produce, Fetch and OffsetCommit errors, disconnects, high latency, the
# group coordinator and a partition leader moved, every broker down for
# 4 s then up. Each fault is injected first, then a writer places and pays
# orders for the fault's length, so traffic meets it; after it, everything
# written must be applied. A fault landed mid-work when the clients' work
# crossed it: the rows written after an injected error or move were
# published and applied (the errors are the next requests'), rows were
# delivered under the latency, rows were held back by the outage. Every
# fault must land. At the end: every row SENT, every event on the topic,
# the model exact.
. "$(dirname "$0")/lib.sh"
app=$tmp/app.db
rm_db=$tmp/rm.db
status() { "$of" outbox status --db "$app" --json; }
sent() { status | sed 's/.*"sent":\([0-9]*\),.*/\1/'; }
pend() { status | sed 's/.*"pending":\([0-9]*\),.*/\1/'; }
applied() {
        sqlite3 -cmd '.timeout 5000' "$rm_db" \
                'SELECT count(*) FROM processed_events' 2>/dev/null || echo 0
}
applied_is() { [ "$(applied)" -eq "$rows" ]; }

start_broker --nodes 3 -p 6
"$of" place --db "$app" --order o-seed --total 1 >/dev/null ||
        fail "could not create $app"
rows=1 faults=0 groups=0 hit=0
"$of" relay --db "$app" -b "$addr" --batch 500 2>"$tmp/relay.err" &
relay_pid=$!
pids+=("$relay_pid")
"$of" project --db "$rm_db" -b "$addr" -g bf --batch-max 200 "${fast[@]}" \
        2>"$tmp/proj.err" &
proj_pid=$!
pids+=("$proj_pid")

# fault NAME SECONDS SEEN INJECT-COMMANDS... -- CLEAR-COMMANDS...: inject,
# write orders for SECONDS, clear, then wait until all is applied. SEEN
# says how the fault met the work: "after" (traffic after the injection:
# errors, moves), "delivered" (rows SENT before the clear: latency) or
# "held" (rows pending at the clear: an outage).
fault() {
        local secs=$2 seen=$3 c sent0 sent1 pend1 why
        name="broker fault: $1"
        shift 3
        while [ $# -gt 0 ] && [ "$1" != -- ]; do
                ctl "$1"
                faults=$((faults + 1))
                shift
        done
        [ $# -gt 0 ] && shift
        sent0=$(sent)
        groups=$((groups + 1))
        start_writer "$app" $((groups * 1000000))
        sleep "$secs" # the fault's length, not a wait for a result
        stop_writer
        sent1=$(sent) pend1=$(pend)
        for c in "$@"; do ctl "$c"; done
        rows=$((rows + written))
        wait_for 90 "all $rows events applied after the fault" applied_is
        alive "$relay_pid" || fail "the relay died: $(tail -3 "$tmp/relay.err")"
        alive "$proj_pid" || fail "the projector died: $(tail -3 "$tmp/proj.err")"
        case $seen in
        after) [ "$written" -gt 0 ] &&
                why="$written rows written after it, all applied" ;;
        delivered) [ "$sent1" -gt "$sent0" ] &&
                why="$((sent1 - sent0)) rows SENT under it" ;;
        held) [ "$pend1" -gt 0 ] && why="$pend1 rows held back by it" ;;
        esac
        [ -n "${why:-}" ] && hit=$((hit + 1))
        ok "${why:-did not meet the work}; $rows events applied"
}

fault "Produce and Fetch errors (NOT_LEADER_FOR_PARTITION)" 2 after \
        "errors Produce 20 NOT_LEADER_FOR_PARTITION" \
        "errors Fetch 20 NOT_LEADER_FOR_PARTITION"
fault "OffsetCommit errors (COORDINATOR_NOT_AVAILABLE, REQUEST_TIMED_OUT)" 2 \
        after "errors OffsetCommit 5 COORDINATOR_NOT_AVAILABLE" \
        "errors OffsetCommit 5 REQUEST_TIMED_OUT"
fault "disconnects on Fetch and Produce (_TRANSPORT)" 2 after \
        "errors Fetch 5 _TRANSPORT" "errors Produce 5 _TRANSPORT"
fault "high latency (500 ms on every broker for 3 s)" 3 delivered \
        "rtt all 500" -- "rtt all 0"
fault "group coordinator and a leader moved" 2 after \
        "coordinator group bf 3" "leader orders 0 2" "leader orders 1 3"
fault "every broker down for 4 s, then up" 4 held "down all" -- "up all"

name="broker faults: every row SENT, every event on the topic, model exact"
wait_for 30 "the outbox to drain" eval \
        'status | grep -q "\"pending\":0,\"sent\":$rows,\"dead\":0"'
kill -TERM "$relay_pid" "$proj_pid"
wait_for 15 "relay and projector to stop" eval \
        '! alive $relay_pid && ! alive $proj_pid'
wait "$relay_pid" || fail "relay exited $? after SIGTERM"
wait "$proj_pid" || fail "projector exited $? after SIGTERM"
kcat -C -b "$addr" -t orders -e -q -o beginning -f '%p\t%o\t%k\t%s\n' \
        >"$tmp/topic.tsv" 2>"$tmp/kcat.err" || fail "kcat: $(cat "$tmp/kcat.err")"
dups=$(python3 "$faults_dir/outbox.py" topic "$app" "$tmp/topic.tsv") ||
        fail "topic check failed"
python3 "$faults_dir/outbox.py" model "$app" "$rm_db" ||
        fail "read model differs from the outbox"
landed "broker faults" broker_faults "$hit" "$groups" "$groups"
ok "$hit of $groups faults met the work (all promised; $faults injections),\
 $rows events, $dups duplicate copies"
