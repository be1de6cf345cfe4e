#!/usr/bin/env bash
# The producing side end to end, as a user runs it: place and pay with the
# binary, `relay --once` to `orderflow broker`, the topic read back with
# kcat (key, headers, envelope, OrderPlaced before OrderPaid per order); a
# dead broker (exit 1, rows still pending, published by the next run); a
# relay crash between produce and mark (published twice, read model still
# exact); and `orderflow demo`.
set -u

of=${ORDERFLOW:-build/orderflow}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/orderflow-relay.XXXXXX") || exit 1
. "$(dirname "$0")/../lib.sh"
broker_pid= relay_pid=
cleanup() {
        [ -n "$relay_pid" ] && kill -9 "$relay_pid" 2>/dev/null
        [ -n "$broker_pid" ] && kill -9 "$broker_pid" 2>/dev/null
        wait 2>/dev/null
        rm -rf "$tmp"
}
trap cleanup EXIT
app=$tmp/app.db
name=setup
fast=(-X session.timeout.ms=6000 -X heartbeat.interval.ms=500)


status() { "$of" outbox status --db "$app" --json; }

[ -x "$of" ] || fail "no binary at $of (run make first)"
start_broker -p 4 ||
        fail "the broker printed no address in 10 s"

# place N orders from $1, paying every second one
write() {
        local i
        for i in $(seq "$1" "$2"); do
                "$of" place --db "$app" --order "o-$i" --total "$((i * 10))" \
                        >/dev/null || fail "place o-$i"
                if [ $((i % 2)) -eq 0 ]; then
                        "$of" pay --db "$app" --order "o-$i" \
                                --amount "$((i * 10))" >/dev/null ||
                                fail "pay o-$i"
                fi
        done
}

# Check the topic against the outbox: every SENT row's event on the topic
# with key, headers and value as stored; OrderPlaced before OrderPaid per
# order; the first copies of the events in each partition in the outbox's
# seq order; prints the number of duplicate copies.
check_topic() {
        kcat -C -b "$addr" -t orders -e -q -o beginning \
                -f '%p\t%o\t%k\t%h\t%s\n' >"$tmp/topic.tsv" 2>/dev/null ||
                fail "kcat could not read the topic"
        python3 - "$app" "$tmp/topic.tsv" <<'PY'
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
rows = {r[0]: r for r in db.execute(
    "SELECT id, type, aggregate_id, payload, seq FROM outbox_messages "
    "JOIN outbox_payloads USING (seq) WHERE status = 'SENT'")}
seen, dups, placed_at, last_seq = {}, 0, {}, {}
msgs = [l.rstrip('\n').split('\t', 4) for l in open(sys.argv[2])]
msgs.sort(key=lambda m: (int(m[0]), int(m[1])))
for p, o, key, hdrs, value in msgs:
    ev = json.loads(value)
    h = dict(kv.split('=', 1) for kv in hdrs.split(','))
    assert key == ev['aggregateId'], (key, ev)
    assert h == {'event_id': ev['id'], 'event_type': ev['type']}, h
    assert ev['id'] in rows, 'not a SENT outbox row: %s' % ev['id']
    assert value == rows[ev['id']][3], 'value differs from the outbox'
    if ev['id'] in seen:
        dups += 1
    else:
        seq = rows[ev['id']][4]
        assert seq > last_seq.get(p, 0), \
            'partition %s: seq %d after seq %d' % (p, seq, last_seq[p])
        last_seq[p] = seq
    seen[ev['id']] = 1
    if ev['type'] == 'OrderPlaced':
        placed_at.setdefault(key, (int(p), int(o)))
    else:
        assert key in placed_at and placed_at[key][0] == int(p), \
            'OrderPaid of %s before its OrderPlaced' % key
missing = set(rows) - set(seen)
assert not missing, '%d SENT rows not on the topic' % len(missing)
print(dups)
PY
}

name="relay --once publishes every row with key, headers, in order"
write 1 300
"$of" relay --db "$app" -b "$addr" --once -q || fail "exit $?"
[ "$(status)" = '{"pending":0,"sent":450,"dead":0,"oldest_pending_age_s":null}' ] ||
        fail "status: $(status)"
dups=$(check_topic) || fail "topic check failed"
[ "$dups" -eq 0 ] || fail "$dups duplicates"
ok

name="a dead broker: exit 1, rows still pending, the next run publishes"
write 301 310
"$of" relay --db "$app" -b 127.0.0.1:1 --once -q 2>"$tmp/err"
[ $? -eq 1 ] || fail "expected exit 1"
grep -q 'no broker' "$tmp/err" || fail "stderr: $(cat "$tmp/err")"
status | grep -q '"pending":15,' || fail "status: $(status)"
"$of" relay --db "$app" -b "$addr" --once -q || fail "exit $?"
status | grep -q '"pending":0,"sent":465,' || fail "status: $(status)"
ok

name="a crash between produce and mark publishes twice; the model is exact"
write 311 350
ORDERFLOW_TEST_RELAY_EXIT_AFTER_PRODUCE=1 "$of" relay --db "$app" \
        -b "$addr" --once --lease-ms 1000 -q
[ $? -eq 99 ] || fail "expected the test hook's exit 99"
# 40 OrderPlaced and 20 OrderPaid published (one batch) but not marked
status | grep -q '"pending":60,' || fail "status: $(status)"
for _ in $(seq 40); do
        "$of" relay --db "$app" -b "$addr" --once --lease-ms 1000 -q ||
                fail "exit $?"
        status | grep -q '"pending":0,' && break
        sleep 0.1 # the crashed relay's lease runs out after 1 s
done
status | grep -q '"pending":0,"sent":525,' || fail "status: $(status)"
dups=$(check_topic) || fail "topic check failed"
[ "$dups" -eq 60 ] || fail "expected 60 duplicates, got $dups"
"$of" project --db "$tmp/rm.db" -b "$addr" -e -q "${fast[@]}" ||
        fail "project exit $?"
"$of" query totals --db "$tmp/rm.db" --json >"$tmp/totals"
want=$(python3 -c 'p=list(range(1,351)); print(
  "{\"orders_placed\":%d,\"orders_paid\":%d,\"placed_amount\":%d,\"paid_amount\":%d}"
  % (len(p), len([i for i in p if i%2==0]), sum(10*i for i in p),
     sum(10*i for i in p if i%2==0)))')
[ "$(tr -d ' ' <"$tmp/totals")" = "$want" ] ||
        fail "totals $(cat "$tmp/totals"), expected $want"
ok

name="a running relay publishes a commit at once, not at its interval"
# Its interval is an hour: whatever is published came through a commit
# waking it (inotify on the database's -wal, data_version).
"$of" relay --db "$app" -b "$addr" --interval-ms 3600000 -q \
        2>"$tmp/wake.err" &
relay_pid=$!
sent_now() {
        why=$(status)
        case $why in *'"pending":0,"sent":'$1,*) return 0 ;; esac
        return 1
}
"$of" place --db "$app" --order wake-1 --total 7 >/dev/null || fail "place"
wait_for 60 "wake-1 published" sent_now 526
"$of" place --db "$app" --order wake-2 --total 8 >/dev/null || fail "place"
"$of" pay --db "$app" --order wake-2 --amount 8 >/dev/null || fail "pay"
wait_for 60 "wake-2 published" sent_now 528
kill -TERM "$relay_pid"
wait "$relay_pid" || fail "exit $? after SIGTERM: $(tail -2 "$tmp/wake.err")"
relay_pid=
ok

# Found 2026-12: a DEAD row could be found only with sqlite3, and
# `relay --once` said nothing of the rows it holds back.
name="outbox list --dead shows a DEAD row; retry --id publishes it"
dapp=$tmp/dead.db
for o in o-d1 o-d2; do
        "$of" place --db "$dapp" --order "$o" --total 5 >/dev/null ||
                fail "place $o"
done
"$of" pay --db "$dapp" --order o-d1 --amount 5 >/dev/null || fail "pay"
# Nothing listens on port 1: one attempt each, failing after 1 s.
"$of" relay --db "$dapp" -b 127.0.0.1:1 --max-attempts 1 --lease-ms 1000 \
        -X message.timeout.ms=1000 -q 2>"$tmp/dead.err" &
relay_pid=$!
dstatus() { "$of" outbox status --db "$dapp" --json; }
two_dead() { dstatus | grep -q '"dead":2,'; }
wait_for 60 "two DEAD rows" two_dead
kill -TERM "$relay_pid"
wait "$relay_pid" || fail "exit $? after SIGTERM"
relay_pid=
# The OrderPaid of o-d1 waits behind its DEAD OrderPlaced.
dstatus | grep -q '"pending":1,"sent":0,"dead":2,' || fail "$(dstatus)"
"$of" outbox list --db "$dapp" --dead --json >"$tmp/dead.json" ||
        fail "outbox list exit $?"
python3 - "$dapp" "$tmp/dead.json" <<'PY' || fail "outbox list --dead --json"
import json, sqlite3, sys
want = [dict(zip(('seq', 'id', 'type', 'order_id', 'attempts',
                  'last_error'), r))
        for r in sqlite3.connect(sys.argv[1]).execute(
            "SELECT seq, id, type, aggregate_id, attempts, last_error "
            "FROM outbox_messages WHERE status = 'DEAD' ORDER BY seq")]
got = [json.loads(l) for l in open(sys.argv[2])]
assert len(want) == 2 and [w['order_id'] for w in want] == ['o-d1', 'o-d2']
for w, g in zip(want, got):
    assert g['status'] == 'DEAD' and g['next_attempt_at'] is None, g
    assert w['last_error'] and g['last_error'] == w['last_error'], g
    for k in w:
        assert g[k] == w[k], (k, g, w)
assert len(got) == len(want), got
PY
"$of" relay --db "$dapp" -b "$addr" --once 2>"$tmp/dead.err" ||
        fail "relay --once exit $?: $(cat "$tmp/dead.err")"
grep -q 'W 2 DEAD outbox row(s), 1 later row(s) of their orders waiting' \
        "$tmp/dead.err" || fail "relay --once said: $(cat "$tmp/dead.err")"
dstatus | grep -q '"pending":1,"sent":0,"dead":2,' || fail "$(dstatus)"
id=$(sqlite3 "$dapp" "SELECT id FROM outbox_messages WHERE status = 'DEAD'
        AND aggregate_id = 'o-d1'")
run outbox retry --db "$dapp" --id "$id"
expect_ok_out "1 row reset from DEAD to PENDING"
"$of" relay --db "$dapp" -b "$addr" --once 2>"$tmp/dead.err" ||
        fail "relay --once exit $?: $(cat "$tmp/dead.err")"
grep -q 'W 1 DEAD outbox row(s), 0 later' "$tmp/dead.err" ||
        fail "relay --once said: $(cat "$tmp/dead.err")"
dstatus | grep -q '"pending":0,"sent":2,"dead":1,' || fail "$(dstatus)"
# Both events of o-d1 are on the topic, OrderPlaced first.
kcat -C -b "$addr" -t orders -e -q -o beginning -f '%k %h\n' 2>/dev/null |
        sed -n 's/^o-d1 event_id=[^,]*,event_type=//p' >"$tmp/d1.types"
[ "$(tr '\n' ' ' <"$tmp/d1.types")" = "OrderPlaced OrderPaid " ] ||
        fail "o-d1 on the topic: $(cat "$tmp/d1.types")"
ok

name="outbox list: the table, --pending, --limit"
run outbox list --db "$dapp"
expect_rc 0
head -1 "$tmp/out" | grep -qE '^seq +id +type +order_id +status +attempts +next_attempt_at +last_error$' ||
        fail "header: $(head -1 "$tmp/out")"
[ "$(wc -l <"$tmp/out")" -eq 4 ] || fail "$(cat "$tmp/out")"
run outbox list --db "$dapp" --limit 1 --json
expect_rc 0
[ "$(wc -l <"$tmp/out")" -eq 1 ] && grep -q '"order_id":"o-d1"' "$tmp/out" ||
        fail "$(cat "$tmp/out")"
run outbox list --db "$dapp" --pending --json
expect_rc 0
[ ! -s "$tmp/out" ] || fail "pending rows: $(cat "$tmp/out")"
run outbox list --db "$dapp" --dead --pending
expect_usage "--dead and --pending"
ok

name="relay usage errors and a missing database"
"$of" relay -b "$addr" >/dev/null 2>"$tmp/err"
[ $? -eq 2 ] && grep -q -- '--db' "$tmp/err" || fail "missing --db"
"$of" relay --db "$tmp/none.db" -b "$addr" --once 2>"$tmp/err"
[ $? -eq 1 ] && [ ! -e "$tmp/none.db" ] || fail "missing database"
"$of" relay --db "$app" --batch 0 2>"$tmp/err"
[ $? -eq 2 ] || fail "--batch 0"
"$of" relay --help | grep -q -- '--once' || fail "--help"
ok

name="orderflow demo prints correct totals"
"$of" demo --orders 300 --dir "$tmp/demo" >"$tmp/demo.out" 2>&1 ||
        fail "exit $?: $(tail -3 "$tmp/demo.out")"
grep -q 'orders_placed *300 *(written: 300)' "$tmp/demo.out" ||
        fail "$(cat "$tmp/demo.out")"
grep -q 'orders_paid *200 *(written: 200)' "$tmp/demo.out" ||
        fail "$(cat "$tmp/demo.out")"
[ -s "$tmp/demo/readmodel.db" ] && [ -s "$tmp/demo/app.db" ] ||
        fail "no databases in --dir"
ok
