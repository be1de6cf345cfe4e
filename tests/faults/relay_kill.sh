#!/usr/bin/env bash
# The relay killed with SIGKILL KILLS times (20) while it publishes ROWS
# outbox rows (50,000: a third of the orders paid too, so an OrderPaid must
# wait for its OrderPlaced) and a writer keeps placing and paying orders.
# Each kill waits for the relay's own progress: the SENT count grown by
# one to two batches since it started; a 100 ms round trip on the broker
# keeps batches in flight and caps what a relay sends before its kill,
# whatever the machine's speed. A kill landed mid-work when rows that
# were due at the relay's start are still pending after it, more than the
# dead relays' leases can hold back: then the relay had work in hand, it
# was not idle. At least KILLS_MIN (90%) must land. Then relays run to
# the end: every row SENT, every event id on the topic (kcat) at least
# once with each order's first OrderPlaced before its first OrderPaid, and
# the read model of `project -e` equal to a model computed from the outbox.
. "$(dirname "$0")/lib.sh"
kills=${KILLS:-20}
min=${KILLS_MIN:-$((kills - kills / 10))}
rows=${ROWS:-50000}
lease=1000
app=$tmp/app.db
status() { "$of" outbox status --db "$app" --json; }
sent() { status | sed 's/.*"sent":\([0-9]*\),.*/\1/'; }
pend() { status | sed 's/.*"pending":\([0-9]*\),.*/\1/'; }
app_sql() { sqlite3 -cmd '.timeout 5000' "$app" "$1"; }

start_broker -p 4
name="relay SIGKILL: fill the outbox with $rows rows"
"$of" place --db "$app" --order o-seed --total 1 >/dev/null ||
        fail "could not create $app"
paid=$(((rows - 1) / 3))
placed=$((rows - 1 - paid))
python3 "$faults_dir/outbox.py" fill "$app" 1 "$placed" ||
        fail "could not fill the outbox"
status | grep -q "\"pending\":$rows," || fail "status: $(status)"
ok

name="relay SIGKILL after progress, $kills times, a writer all along"
ctl rtt 1 100
start_writer "$app" $((placed + 1))
# sent_reached N: the relay under test ($pid) has SENT rows up to N.
sent_reached() {
        alive "$pid" ||
                fail "run $i exited by itself: $(tail -3 "$tmp/relay.err")"
        [ "$(sent)" -ge "$1" ]
}
hit=0 batch=() killed_ms=()
for i in $(seq "$kills"); do
        batch[i]=$((RANDOM % 230 + 20))
        last=$(app_sql 'SELECT ifnull(max(seq), 0) FROM outbox_messages')
        from=$(sent)
        start=$(now_ms)
        "$of" relay --db "$app" -b "$addr" --lease-ms "$lease" -q \
                --batch "${batch[i]}" 2>"$tmp/relay.err" &
        pid=$!
        pids+=("$pid")
        poll_s=0.02 wait_for 60 "run $i to send rows" \
                sent_reached $((from + 1 + RANDOM % (2 * batch[i])))
        kill -9 "$pid"
        wait "$pid" 2>/dev/null
        killed_ms[i]=$(now_ms)
        # A dead relay's live lease holds back its two claims' rows and
        # each one's later OrderPaid: at most 4 rows a row of its batch.
        held=0
        for ((j = 1; j < i; j++)); do
                [ $((killed_ms[j] + lease)) -gt "$start" ] &&
                        held=$((held + 4 * batch[j]))
        done
        due=$(app_sql "SELECT count(*) FROM outbox_messages
                       WHERE status = 'PENDING' AND seq <= $last")
        [ "$due" -gt "$held" ] && hit=$((hit + 1))
done
stop_writer
landed "relay kills" relay_kills "$hit" "$kills" "$min"
ok "$hit of $kills mid-work (at least $min promised), $written rows written\
 meanwhile, $(pend) pending"

name="relay SIGKILL: relays to the end send every row"
ctl rtt 1 0
rows=$((rows + written))
# The killed relays' leases run out 1 s after their claims.
for _ in $(seq 60); do
        "$of" relay --db "$app" -b "$addr" --once --lease-ms "$lease" -q \
                2>"$tmp/relay.err" || fail "relay --once exited $?: $(tail -3 "$tmp/relay.err")"
        [ "$(pend)" -eq 0 ] && break
        sleep 0.2
done
[ "$(status)" = "{\"pending\":0,\"sent\":$rows,\"dead\":0,\"oldest_pending_age_s\":null}" ] ||
        fail "status: $(status), expected $rows rows SENT"
ok

name="relay SIGKILL: every event on the topic, OrderPlaced first"
kcat -C -b "$addr" -t orders -e -q -o beginning -f '%p\t%o\t%k\t%s\n' \
        >"$tmp/topic.tsv" 2>"$tmp/kcat.err" || fail "kcat: $(cat "$tmp/kcat.err")"
dups=$(python3 "$faults_dir/outbox.py" topic "$app" "$tmp/topic.tsv") || fail "topic check failed"
figure relay_duplicates "$dups"
ok "$dups duplicate copies"

name="relay SIGKILL: the read model is exact"
"$of" project --db "$tmp/rm.db" -b "$addr" -e -q "${fast[@]}" \
        2>"$tmp/proj.err" || fail "project exited $?: $(tail -3 "$tmp/proj.err")"
python3 "$faults_dir/outbox.py" model "$app" "$tmp/rm.db" ||
        fail "read model differs from the outbox"
ok
