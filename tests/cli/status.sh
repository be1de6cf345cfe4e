#!/usr/bin/env bash
# orderflow status end to end: while a projector catches up on a published
# stream, `status --json` (parsed by python's json) shows the lag going
# down to 0, never up, with per-partition applied + lag = end; at the end
# the counters are the independent model's. Then the table, a dead broker
# (the file's part, exit 1) and usage errors.
set -u

of=${ORDERFLOW:-build/orderflow}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/orderflow-status.XXXXXX") || exit 1
. "$(dirname "$0")/../lib.sh"
broker_pid= proj_pid=
cleanup() {
        for p in $proj_pid $broker_pid; do
                kill -9 "$p" 2>/dev/null
        done
        wait 2>/dev/null
        rm -rf "$tmp"
}
trap cleanup EXIT
db=$tmp/readmodel.db
name=setup
fast=(-X session.timeout.ms=6000 -X heartbeat.interval.ms=500)

[ -x "$of" ] || fail "no binary at $of (run make first)"
command -v kcat >/dev/null || fail "kcat is needed to publish events"
start_broker --partitions 3 || fail "the broker printed no address in 10 s"
python3 "$here/gen_stream.py" 6000 5 "$tmp" || fail "gen_stream.py failed"
kcat -P -b "$addr" -t orders -K '|' -l "$tmp/stream.txt" ||
        fail "kcat could not publish"
total=$(wc -l <"$tmp/stream.txt")

name="lag goes to 0 as the projector catches up"
# Small, slow batches so that status sees it part way.
"$of" project --db "$db" -b "$addr" -g status --batch-max 300 \
        --batch-ms 50 -q "${fast[@]}" 2>"$tmp/proj.err" &
proj_pid=$!
for _ in $(seq 600); do
        if [ -e "$db" ]; then
                "$of" status --db "$db" -b "$addr" --json \
                        >>"$tmp/status.jsonl" 2>>"$tmp/status.err" ||
                        fail "status exited $?: $(tail -1 "$tmp/status.err")"
                tail -1 "$tmp/status.jsonl" | grep -q '"lag":0,' && break
        fi
        sleep 0.1
done
python3 - "$tmp/status.jsonl" "$total" <<'EOF' || fail "see above"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
total = int(sys.argv[2])
lags = [r["lag"] for r in rows]
assert lags[-1] == 0, "last lag %r" % lags[-1]
assert any(l > 0 for l in lags), "never saw a lag above 0: %r" % lags
assert all(a >= b for a, b in zip(lags, lags[1:])), "lag went up: %r" % lags
for r in rows:
    ends = sum(p["end"] for p in r["partitions"])
    assert ends == total, "end offsets sum to %d, not %d" % (ends, total)
    for p in r["partitions"]:
        applied = p["applied"] or 0
        assert applied + p["lag"] == p["end"], p
    assert r["lag"] == sum(p["lag"] for p in r["partitions"]), r
print("# %d status reads, lag %d down to 0" % (len(rows), max(lags)))
EOF
kill -TERM "$proj_pid"
wait "$proj_pid" || fail "the projector exited $?"
proj_pid=
ok

name="the counters are the model's"
python3 "$here/gen_stream.py" check "$db" "$tmp" || fail "model differs"
"$of" status --db "$db" -b "$addr" --json >"$tmp/last.json" ||
        fail "status exited $?"
python3 - "$tmp/last.json" "$db" <<'EOF' || fail "see above"
import json, sqlite3, sys
r = json.loads(open(sys.argv[1]).read())
c = sqlite3.connect(sys.argv[2])
events = c.execute("SELECT count(*) FROM processed_events").fetchone()[0]
dead = c.execute("SELECT count(*) FROM dead_letters").fetchone()[0]
assert r["applied"] + r["ignored"] == events, (r, events)
assert r["dead_letters"] == dead, (r, dead)
assert r["batches"] > 1 and r["last_batch_at"].endswith("Z"), r
assert r["rebuilt_at"] is None and r["truncated"] is None, r
topics = [t for (t,) in c.execute(
    "SELECT DISTINCT topic FROM partition_offsets ORDER BY topic")]
assert topics == ["orders"] and r["offsets_of"] == topics, (r, topics)
EOF
ok

name="the table for people"
"$of" status --db "$db" -b "$addr" >"$tmp/table" || fail "exited $?"
grep -q '^partition  *applied  *end  *lag$' "$tmp/table" || fail "no header"
grep -q '^total  *0$' "$tmp/table" || fail "no total: $(cat "$tmp/table")"
grep -q '^topic  *orders$' "$tmp/table" && grep -q '^offsets of  *orders$' \
        "$tmp/table" || fail "which topic: $(cat "$tmp/table")"
[ "$(grep -c '^[0-9]' "$tmp/table")" -eq 3 ] || fail "not 3 partitions"
ok

name="a dead broker: the file's part and exit 1"
kill "$broker_pid"
wait "$broker_pid" 2>/dev/null
broker_pid=
"$of" status --db "$db" -b "$addr" --json -q >"$tmp/down.json" \
        2>"$tmp/down.err"
rc=$?
[ "$rc" -eq 1 ] || fail "expected exit 1, got $rc"
python3 -c '
import json, sys
r = json.loads(open(sys.argv[1]).read())
assert r["lag"] is None and r["applied"] > 0, r
assert all(p["end"] is None and p["applied"] for p in r["partitions"]), r
' "$tmp/down.json" || fail "json: $(cat "$tmp/down.json")"
[ "$(wc -l <"$tmp/down.err")" -eq 1 ] ||
        fail "expected one error line: $(cat "$tmp/down.err")"
ok

name="usage errors"
"$of" status -b "$addr" 2>"$tmp/err"
[ $? -eq 2 ] && grep -q -- '--db: required' "$tmp/err" || fail "no --db"
"$of" status --db "$tmp/none.db" 2>"$tmp/err"
[ $? -eq 1 ] && grep -qF "no read model at $tmp/none.db" "$tmp/err" || fail "missing file"
[ ! -e "$tmp/none.db" ] || fail "status created a file"
"$of" status --help | grep -q -- '--json' || fail "--help"
ok
