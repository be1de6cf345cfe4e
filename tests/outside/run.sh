#!/usr/bin/env bash
# Checked from outside (issue 5), by hand, not in CI: it needs npm. kafkajs
# (a Kafka client that is not librdkafka) produces a gen_stream.py stream
# while the projector is SIGKILLed 30 times at random moments, then the
# model must be exact; then the relay is SIGKILLed 20 times while it
# publishes 4,500 outbox rows, kafkajs reads the topic back (key, headers,
# per-order order) and the model's totals must be exact.
# Then rebuilds while kafkajs produces (see the end).
# usage: tests/outside/run.sh   (after make; installs kafkajs 2 in a temp dir)
set -u
here=$(cd "$(dirname "$0")" && pwd)
of=$(cd "$here/../.." && pwd)/build/orderflow
gen=$here/../cli/gen_stream.py
d=$(mktemp -d "${TMPDIR:-/tmp}/orderflow-outside.XXXXXX") || exit 1
trap 'kill $bp 2>/dev/null; rm -rf "$d"' EXIT
cd "$d" || exit 1
cp "$here/produce.js" "$here/consume.js" . &&
        npm install --silent --no-audit --no-fund kafkajs@2 >/dev/null ||
        { echo "npm install kafkajs failed"; exit 1; }
$of broker -t orders -p 8 > broker.out 2> broker.err & bp=$!
for i in $(seq 100); do [ -s broker.out ] && break; sleep 0.1; done
A=$(head -1 broker.out)
python3 "$gen" 15000 4242 "$d" > /dev/null
wc -l < $d/stream.txt
node produce.js $A "$d/stream.txt" > prod.out 2>&1 & pp=$!
kills=0
for k in $(seq 30); do
  $of project --db rm.db -b $A -g g$k -X session.timeout.ms=6000 -X heartbeat.interval.ms=500 2>> proj.err & p=$!
  sleep 0.$((RANDOM % 9 + 1)); sleep $((RANDOM % 2))
  kill -9 $p 2>/dev/null && kills=$((kills + 1)); wait $p 2>/dev/null
done
wait $pp; cat prod.out
$of project --db rm.db -b $A -g final -e -X session.timeout.ms=6000 2>> proj.err || echo "final project failed"
python3 "$gen" check rm.db "$d" || { echo "not ok - projector: model differs"; exit 1; }
echo "ok - projector: $kills SIGKILLs, model exact"
kill $bp; wait $bp 2>/dev/null
# relay
$of broker -t orders -p 8 > broker2.out 2> broker2.err & bp=$!
for i in $(seq 100); do [ -s broker2.out ] && break; sleep 0.1; done
A=$(head -1 broker2.out)
for i in $(seq 1 3000); do $of place --db app.db --order "o-$i" --total $i > /dev/null; done
for i in $(seq 1 2 3000); do $of pay --db app.db --order "o-$i" --amount $i > /dev/null; done
rk=0
for k in $(seq 20); do
  $of relay --db app.db -b $A -q --batch 200 --lease-ms 1000 2>> relay.err & r=$!
  sleep 0.$((RANDOM % 5 + 1))
  kill -9 $r 2>/dev/null && rk=$((rk + 1)); wait $r 2>/dev/null
done
sleep 1.2; $of relay --db app.db -b $A --once -q 2>> relay.err; $of relay --db app.db -b $A --once -q 2>> relay.err
$of outbox status --db app.db --json
total=$(sqlite3 app.db "select count(*) from outbox_messages")
copies=$(kcat -C -b $A -t orders -e -q -f 'x\n' 2>/dev/null | wc -l)
read_back=$(node consume.js $A "$copies")
echo "kafkajs read $read_back"
case $read_back in
*"\"distinct\":$total,\"bad\":0}"*) ;;
*) echo "not ok - relay: the topic read back: $read_back"; exit 1 ;;
esac
$of project --db rm2.db -b $A -g f2 -e -X session.timeout.ms=6000 2>> proj2.err
got="$(sqlite3 rm2.db "select count(*) from processed_events")|$(sqlite3 rm2.db "select orders_placed||','||orders_paid||','||placed_amount||','||paid_amount from order_totals")"
want="4500|3000,1500,$((3000 * 3001 / 2)),$((1500 * 1500))"
[ "$got" = "$want" ] || { echo "not ok - relay: model $got, want $want"; exit 1; }
echo "ok - relay: $rk SIGKILLs, $total rows, model exact ($got)"
kill $bp; wait $bp 2>/dev/null
# rebuild (issue 6): kafkajs produces a stream while a projector runs on
# rm3.db, three rebuilds swap new models in, and a reader that is neither
# orderflow nor the sqlite3 shell (Python's sqlite3 module) checks the
# totals every 20 ms; then the model must be exact.
$of broker -t orders -p 8 > broker3.out 2> broker3.err & bp=$!
for i in $(seq 100); do [ -s broker3.out ] && break; sleep 0.1; done
A=$(head -1 broker3.out)
python3 "$gen" 15000 977 "$d" > /dev/null
total=$(wc -l < "$d/stream.txt")
$of project --db rm3.db -b $A -g live -X session.timeout.ms=6000 -X heartbeat.interval.ms=500 2> proj3.err & pj=$!
for i in $(seq 100); do [ -e rm3.db ] && break; sleep 0.1; done
python3 - rm3.db > reads.out 2>&1 <<'PY' & rd=$!
import sqlite3, sys, time, os
q = """SELECT (SELECT generation FROM store_info),
  (SELECT orders_placed FROM order_totals) = (SELECT count(placed_at) FROM order_list)
  AND (SELECT placed_amount FROM order_totals) = (SELECT ifnull(sum(total), 0) FROM order_list)
  AND (SELECT paid_amount FROM order_totals) = (SELECT ifnull(sum(paid_amount), 0) FROM order_list)"""
gens, n, bad = [], 0, 0
while not os.path.exists(sys.argv[1] + '.stop'):
    try:
        c = sqlite3.connect('file:%s?mode=ro' % sys.argv[1], uri=True, timeout=5)
        g, ok = c.execute(q).fetchone()
        c.close()
    except Exception as e:
        print('error', e); bad += 1; time.sleep(0.02); continue
    n += 1
    bad += not ok
    if not gens or gens[-1] != g:
        if g in gens: print('generation came back', g); bad += 1
        gens.append(g)
    time.sleep(0.02)
print('reads', n, 'bad', bad, 'generations', len(gens))
PY
node produce.js $A "$d/stream.txt" > prod3.out 2>&1 & pp=$!
sleep 1
for k in 1 2 3; do
  $of rebuild --db rm3.db -b $A -q > rb$k.out 2> rb$k.err || { echo "not ok - rebuild $k exited $?: $(cat rb$k.err)"; exit 1; }
  sleep 0.$((RANDOM % 9 + 1))
done
wait $pp; cat prod3.out
for i in $(seq 600); do
  n=$(sqlite3 -cmd '.timeout 5000' rm3.db 'select ifnull(sum(next_offset), 0) from partition_offsets')
  [ "$n" -ge "$total" ] && break; sleep 0.1
done
kill -TERM $pj; wait $pj || echo "projector exited $?"
touch rm3.db.stop; wait $rd; cat reads.out
python3 "$gen" check rm3.db "$d" || { echo "not ok - rebuild: model differs"; exit 1; }
grep -q 'reads [0-9]* bad 0 generations 4' reads.out || { echo "not ok - rebuild: reader: $(tail -1 reads.out)"; exit 1; }
echo "ok - rebuild: 3 rebuilds while kafkajs produced $total messages and a projector ran ($(grep -c 'was replaced' proj3.err) swaps seen), $(tail -1 reads.out), model exact"
kill $bp; wait $bp 2>/dev/null
