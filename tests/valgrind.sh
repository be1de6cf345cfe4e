#!/usr/bin/env bash
# make valgrind: memcheck on the unit test programs that need no broker and
# on a short pipeline run (relay --once and project -e, both under
# valgrind, against `orderflow broker`). Any memory error or definite leak
# fails (librdkafka's threads keep some "possibly lost" blocks at exit: not
# counted). Prints one line per program and "valgrind: N clean, M not".
set -u

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
B=${B:-build}
of=$B/orderflow
tmp=$(mktemp -d "${TMPDIR:-/tmp}/orderflow-valgrind.XXXXXX") || exit 1
. "$root/tests/lib.sh"
broker_pid=
cleanup() {
        [ -n "$broker_pid" ] && kill -9 "$broker_pid" 2>/dev/null
        wait 2>/dev/null
        rm -rf "$tmp"
}
trap cleanup EXIT
vg=(valgrind -q --error-exitcode=99 --leak-check=full
    --errors-for-leak-kinds=definite,indirect)
clean=0 bad=0

# check NAME COMMAND...: run it under memcheck, count it.
check() {
        local name=$1 rc
        shift
        "${vg[@]}" --log-file="$tmp/$name.vg" "$@" >"$tmp/$name.out" 2>&1
        rc=$?
        if [ "$rc" -eq 0 ] && [ ! -s "$tmp/$name.vg" ]; then
                echo "ok - $name"
                clean=$((clean + 1))
        else
                echo "not ok - $name (exit $rc)"
                head -30 "$tmp/$name.vg" "$tmp/$name.out"
                bad=$((bad + 1))
        fi
}

command -v valgrind >/dev/null || { echo "valgrind: not installed"; exit 1; }
for t in test_timestamp test_event test_idfilter test_store test_appdb \
        test_outbox test_sqldb test_metrics; do
        check "$t" "$B/tests/$t"
done

start_broker -t orders -p 2 ||
        fail "the broker printed no address in 10 s"
[ -n "$addr" ] || { echo "not ok - the broker printed no address"; exit 1; }
for i in $(seq 40); do
        "$of" place --db "$tmp/app.db" --order "o-$i" --total "$i" >/dev/null
        [ $((i % 2)) -eq 0 ] &&
                "$of" pay --db "$tmp/app.db" --order "o-$i" --amount "$i" \
                        >/dev/null
done
printf 'x|not json\n' | kcat -P -b "$addr" -t orders -K '|' -p 0
# With metrics served (port 0, loopback): the server's thread is started
# and stopped under memcheck too.
check "relay --once" "$of" relay --db "$tmp/app.db" -b "$addr" --once \
        --metrics-port 0 --metrics-addr 127.0.0.1
check "project -e" "$of" project --db "$tmp/rm.db" -b "$addr" -e \
        --metrics-port 0 --metrics-addr 127.0.0.1 \
        -X session.timeout.ms=6000 -X heartbeat.interval.ms=500
check "query orders" "$of" query orders --db "$tmp/rm.db" --json
got=$(sqlite3 "$tmp/rm.db" "SELECT (SELECT count(*) FROM processed_events)
        || ',' || (SELECT count(*) FROM dead_letters)")
if [ "$got" = 60,1 ]; then
        echo "ok - the run under valgrind applied 60 events, 1 dead letter"
else
        echo "not ok - the run under valgrind: $got, want 60,1"
        bad=$((bad + 1))
fi
echo "valgrind: $clean clean, $bad not"
[ "$bad" -eq 0 ]
