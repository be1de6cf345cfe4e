#!/usr/bin/env bash
# SIGHUP (a closed terminal, `kill -HUP`) is a clean stop like SIGTERM for
# every long-running command, exit 0 (found 2026-12: it killed them; the
# projector lost the batch in hand, left no group, and its next start
# waited out a session): broker; relay (every row it published marked);
# project (the batch in hand committed: held with a long --batch-ms and
# stopped once it holds messages); rebuild (stopped part way: the live
# file as it was); demo (stopped while it writes). And a projector that
# waits to join its group says so while it waits, and stops cleanly then
# too.
set -u

of=${ORDERFLOW:-build/orderflow}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/orderflow-signals.XXXXXX") || exit 1
. "$(dirname "$0")/../lib.sh"
broker_pid= pid=
cleanup() {
        for p in $pid $broker_pid; do
                kill -9 "$p" 2>/dev/null
        done
        exec 7>&- 2>/dev/null
        wait 2>/dev/null
        [ -n "${KEEP:-}" ] && echo "kept $tmp" >&2 || rm -rf "$tmp"
}
trap cleanup EXIT
name=setup
fast=(-X session.timeout.ms=6000 -X heartbeat.interval.ms=500)

running() {
        kill -0 "$pid" 2>/dev/null ||
                fail "it exited early: $(tail -2 "$tmp/err")"
}
# hup_stop: SIGHUP to $pid; it must exit 0 within 15 s.
hup_stop() {
        kill -HUP "$pid"
        wait_for 15 "a stop on SIGHUP" eval '! kill -0 $pid 2>/dev/null'
        wait "$pid"
        local rc=$?
        pid=
        [ "$rc" -eq 0 ] || fail "exit $rc after SIGHUP: $(tail -2 "$tmp/err")"
}

[ -x "$of" ] || fail "no binary at $of (run make first)"
command -v kcat >/dev/null || fail "kcat is needed to publish events"

name="broker: SIGHUP is a clean stop"
"$of" broker >"$tmp/out" 2>"$tmp/err" &
pid=$!
wait_for 10 "the broker's address" test -s "$tmp/out"
hup_stop
ok

# The broker for the rest, with its fault commands on fd 7.
start_broker_ctl --partitions 4

name="relay: SIGHUP is a clean stop, every published row marked"
app=$tmp/app.db
for i in $(seq 20); do
        "$of" place --db "$app" --order "o-$i" --total "$i" >/dev/null ||
                fail "place"
done
"$of" relay --db "$app" -b "$addr" -t relayed 2>"$tmp/err" &
pid=$!
pending() { "$of" outbox status --db "$app" --json | grep -q '"pending":0,'; }
wait_for 30 "the outbox to be published" pending
running
hup_stop
"$of" outbox status --db "$app" --json | grep -q '"sent":20,' ||
        fail "$("$of" outbox status --db "$app" --json)"
ok

name="project: SIGHUP commits the batch in hand"
db=$tmp/rm.db
python3 "$here/gen_stream.py" 2000 3 "$tmp" || fail "gen_stream.py failed"
total=$(wc -l <"$tmp/stream.txt")
# A batch closes only at a stop: it holds what came until the signal.
"$of" project --db "$db" -b "$addr" -g hup -v --batch-ms 600000 \
        --batch-max 1000000 "${fast[@]}" 2>"$tmp/err" &
pid=$!
wait_for 30 "the assignment" has_line "$tmp/err" 'I assigned'
kcat -P -b "$addr" -t orders -K '|' -l "$tmp/stream.txt" ||
        fail "kcat could not publish"
wait_for 30 "a batch in hand" has_line "$tmp/err" 'batch: first message'
running
hup_stop
applied=$(sq "$db" 'SELECT ifnull(sum(next_offset), 0) FROM partition_offsets')
[ "$applied" -gt 0 ] || fail "nothing committed"
grep -q 'I applied [1-9]' "$tmp/err" || fail "no summary: $(tail -1 "$tmp/err")"
# The rest, by a projector of another group (this one's would wait out
# the session on the embedded broker, see below): exact.
"$of" project --db "$db" -b "$addr" -g rest -e -q "${fast[@]}" \
        2>"$tmp/err" || fail "project -e exited $?"
python3 "$here/gen_stream.py" check "$db" "$tmp" || fail "model"
ok
echo "# $applied of $total offsets committed at the signal"

name="project: a long join is explained, and a stop while joining is clean"
# A member that left (cleanly) group join, whose session is the default
# 45 s: the embedded broker waits it out before it assigns anything to a
# new member.
"$of" project --db "$tmp/join.db" -b "$addr" -g join 2>"$tmp/err" &
pid=$!
wait_for 30 "the assignment" has_line "$tmp/err" 'I assigned'
hup_stop
fresh "$tmp/err"
"$of" project --db "$tmp/join.db" -b "$addr" -g join 2>"$tmp/err" &
pid=$!
wait_for 5 "the start line" has_line "$tmp/err" "projecting topic orders into $tmp/join.db: group join, brokers $addr; joining the group"
if real_kafka; then
        # Kafka hands the partitions of a member that left to the next at
        # once: no waiting, nothing to explain.
        wait_for 30 "the assignment" has_line "$tmp/err" 'I assigned'
        has_line "$tmp/err" 'still joining' &&
                fail "a long join on real Kafka: $(grep 'still joining' "$tmp/err")"
else
        wait_for 30 "a line that it still joins" \
                has_line "$tmp/err" 'still joining group join after [0-9]* s: .*session.timeout.ms (45000 ms)'
        has_line "$tmp/err" 'I assigned' && fail "assigned already: cannot check"
fi
hup_stop
ok

name="rebuild: SIGHUP part way is a clean stop, the live file as it was"
sq "$db" .dump >"$tmp/before.sql"
ctl rtt 1 100 # slow fetches: the replay lasts seconds
fresh "$tmp/err"
"$of" rebuild --db "$db" -b "$addr" --batch-max 50 \
        -X max.partition.fetch.bytes=5000 -X fetch.max.bytes=20000 \
        -X message.max.bytes=20000 >/dev/null 2>"$tmp/err" &
pid=$!
wait_for 60 "the rebuild's progress" has_line "$tmp/err" 'rebuild: [0-9]* of'
running
hup_stop
ctl rtt 1 0
grep -q "interrupted; $db is unchanged" "$tmp/err" ||
        fail "message: $(tail -1 "$tmp/err")"
sq "$db" .dump | cmp -s - "$tmp/before.sql" || fail "the live file changed"
ls "$db".rebuild* >/dev/null 2>&1 && fail "the replay's file was left"
ok

name="demo: SIGHUP while it writes is a clean stop"
fresh "$tmp/out" "$tmp/err"
"$of" demo --orders 1000000 --dir "$tmp/demo" >"$tmp/out" 2>"$tmp/err" &
pid=$!
wait_for 30 "the demo's broker" has_line "$tmp/out" 'embedded broker:'
wait_for 30 "orders written" test -s "$tmp/demo/app.db"
running
hup_stop
grep -q 'interrupted' "$tmp/out" || fail "output: $(tail -2 "$tmp/out")"
ok
