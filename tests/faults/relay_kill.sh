#!/usr/bin/env bash
# The relay killed with SIGKILL at random moments, KILLS times (20) while
# it publishes ROWS outbox rows (50,000: a third of the orders paid too,
# so an OrderPaid must wait for its OrderPlaced); a 100 ms round trip on
# the broker keeps batches in flight when the kill comes. Then relays run
# to the end: every row SENT, every event id on the topic (kcat) at least
# once with each order's first OrderPlaced before its first OrderPaid, and
# the read model of `project -e` equal to a model computed from the outbox.
. "$(dirname "$0")/lib.sh"
kills=${KILLS:-20}
rows=${ROWS:-50000}
app=$tmp/app.db
status() { "$of" outbox status --db "$app" --json; }

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

name="relay SIGKILL at random moments, $kills times"
ctl rtt 1 100
figure broker_faults 1
pend() { status | sed 's/.*"pending":\([0-9]*\),.*/\1/'; }
prev=$rows progressed=0
for i in $(seq "$kills"); do
        "$of" relay --db "$app" -b "$addr" --lease-ms 1000 -q \
                --batch $((RANDOM % 1500 + 200)) 2>"$tmp/relay.err" &
        pid=$!
        pids+=("$pid")
        sleep "0.$((RANDOM % 700 + 300))"
        alive "$pid" || fail "run $i exited by itself: $(tail -3 "$tmp/relay.err")"
        kill -9 "$pid"
        wait "$pid" 2>/dev/null
        n=$(pend)
        [ "$n" -lt "$prev" ] && progressed=$((progressed + 1))
        prev=$n
done
figure relay_kills "$kills"
[ "$prev" -gt 0 ] || fail "the outbox was empty before the last kill: the kills came too late"
ok "$progressed with progress, $prev rows still pending"

name="relay SIGKILL: relays to the end send every row"
ctl rtt 1 0
# The killed relays' leases run out 1 s after their claims.
for _ in $(seq 60); do
        "$of" relay --db "$app" -b "$addr" --once --lease-ms 1000 -q \
                2>"$tmp/relay.err" || fail "relay --once exited $?: $(tail -3 "$tmp/relay.err")"
        [ "$(pend)" -eq 0 ] && break
        sleep 0.2
done
[ "$(status)" = "{\"pending\":0,\"sent\":$rows,\"dead\":0,\"oldest_pending_age_s\":null}" ] ||
        fail "status: $(status)"
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
