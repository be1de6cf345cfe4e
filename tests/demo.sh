#!/usr/bin/env bash
# make demo: the projector end to end on the embedded broker. Starts
# `orderflow broker`, publishes a stream of orders (with redeliveries,
# paid-before-placed orders and malformed messages) with kcat, runs
# `orderflow project -e`, and prints what the read model holds.
set -u

root=$(cd "$(dirname "$0")/.." && pwd)
of=${ORDERFLOW:-$root/build/orderflow}
orders=${ORDERS:-1000}
dir=${DIR:-$(mktemp -d "${TMPDIR:-/tmp}/orderflow-demo.XXXXXX")}
broker_pid=
trap '[ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null; wait' EXIT

mkdir -p "$dir"
echo "demo folder: $dir"
"$of" broker -p 4 >"$dir/broker.out" 2>"$dir/broker.err" &
broker_pid=$!
for _ in $(seq 100); do
        [ -s "$dir/broker.out" ] && break
        sleep 0.1
done
addr=$(head -1 "$dir/broker.out")
[ -n "$addr" ] || { echo "demo: the broker did not start" >&2; exit 1; }
echo "embedded broker: $addr"

python3 "$root/tests/cli/gen_stream.py" "$orders" 1 "$dir" || exit 1
kcat -P -b "$addr" -t orders -K '|' -l "$dir/stream.txt" || exit 1
echo "published $(wc -l <"$dir/stream.txt") messages for $orders orders"

"$of" project --db "$dir/readmodel.db" -b "$addr" -e \
        -X session.timeout.ms=6000 -X heartbeat.interval.ms=500 || exit 1
python3 "$root/tests/cli/gen_stream.py" check "$dir/readmodel.db" "$dir" &&
        echo "read model checked against an independent model: exact"

echo
echo "== orderflow query totals"
"$of" query totals --db "$dir/readmodel.db"
echo
echo "== orderflow query orders (first 10)"
"$of" query orders --db "$dir/readmodel.db" | head -11
echo
echo "== orderflow query dead-letters (first 5)"
"$of" query dead-letters --db "$dir/readmodel.db" | head -6
echo
echo "look further:"
echo "  sqlite3 $dir/readmodel.db 'SELECT * FROM daily_totals'"
echo "  $of query daily --db $dir/readmodel.db --json"
