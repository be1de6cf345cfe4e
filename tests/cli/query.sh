#!/usr/bin/env bash
# orderflow query end to end: usage errors, a missing or foreign file, and
# the exact table and JSON Lines for a read model filled by hand with
# sqlite3 (no broker needed).
set -u

of=${ORDERFLOW:-build/orderflow}
. "$(dirname "$0")/../lib.sh"
root=$(cd "$(dirname "$0")/../.." && pwd)
schema=$root/schema/readmodel.sql
tmp=$(mktemp -d "${TMPDIR:-/tmp}/orderflow-query.XXXXXX") || exit 1
writer_pid=
cleanup() {
        [ -n "$writer_pid" ] && kill "$writer_pid" 2>/dev/null
        rm -rf "$tmp"
}
trap cleanup EXIT
db=$tmp/readmodel.db
name=setup

[ -x "$of" ] || fail "no binary at $of (run make first)"
command -v sqlite3 >/dev/null || fail "sqlite3 is needed to build a fixture"

# ---- a read model filled by hand ----
sqlite3 "$db" <"$schema" || fail "could not create $db from $schema"
sqlite3 "$db" >/dev/null <<'EOF' || fail "could not fill $db"
PRAGMA journal_mode = WAL;
INSERT INTO order_list VALUES
  ('o-1002', 'PAID', NULL, 500, NULL, '2026-11-28T09:00:00.000Z'),
  ('o-1001', 'PAID', 1250, 1250, '2026-11-27T10:15:30.123Z',
   '2026-11-27T10:16:02.000Z'),
  ('o-1003-é', 'ORDERED', 99, NULL, '2026-11-28T23:59:59.999Z', NULL);
UPDATE order_totals SET orders_placed = 2, orders_paid = 2,
  placed_amount = 1349, paid_amount = 1750;
INSERT INTO daily_totals VALUES
  ('2026-11-28', 1, 1, 99, 500),
  ('2026-11-27', 1, 1, 1250, 1250);
INSERT INTO dead_letters VALUES
  ('orders', 1, 7, CAST('o-9' AS BLOB), X'7B2269223AFF0A7D', 'invalid UTF-8',
   '2026-11-27T10:20:00.000Z'),
  ('orders', 0, 3, NULL,
   CAST('{"id":"x","type":"OrderPlaced","aggregateId":"o-1","occurredAt":'
        || '"2026-02-30T00:00:00Z","payload":{"orderId":"o-1","total":1}}'
        AS BLOB),
   'invalid occurredAt: no such day: 2026-02-30', '2026-11-27T10:21:00.000Z');
EOF

# ---- help and usage ----
name="query --help"
run query --help
expect_rc 0
grep -q '^usage: orderflow query' "$tmp/out" || fail "expected usage on stdout"
ok

name="query without --db is a usage error"
run query orders
expect_usage "--db"
ok

name="query without a relation is a usage error"
run query --db "$db"
expect_usage "missing"
ok

name="query of an unknown relation is a usage error"
run query customers --db "$db"
expect_usage "customers"
ok

name="query with an unknown option is a usage error"
run query orders --db "$db" --csv
expect_usage "--csv"
ok

name="query with --db and no path is a usage error"
run query orders --db
expect_usage "--db"
ok

name="query with an extra argument is a usage error"
run query orders daily --db "$db"
expect_usage "daily"
ok

# ---- runtime failures ----
name="query of a missing file exits 1 and creates nothing"
run query orders --db "$tmp/nothing.db"
expect_rc 1
[ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q '^orderflow query: ' "$tmp/err" ||
        fail "expected one line 'orderflow query: ...', got: $(cat "$tmp/err")"
grep -qF "$tmp/nothing.db" "$tmp/err" || fail "expected the path in stderr"
[ ! -e "$tmp/nothing.db" ] || fail "expected $tmp/nothing.db not to be created"
ok

name="query of a file that is not a read model exits 1"
echo "not sqlite" >"$tmp/junk.db"
run query totals --db "$tmp/junk.db"
expect_rc 1
grep -q '^orderflow query: .*not a read model' "$tmp/err" ||
        fail "expected 'not a read model' on stderr, got: $(cat "$tmp/err")"
ok

# ---- tables ----
name="query orders prints an aligned table by order_id"
run query orders --db "$db"
expect_rc 0
cat >"$tmp/expected" <<'EOF'
order_id  status   total  paid_amount  placed_at                 paid_at
o-1001    PAID      1250         1250  2026-11-27T10:15:30.123Z  2026-11-27T10:16:02.000Z
o-1002    PAID                    500                            2026-11-28T09:00:00.000Z
o-1003-é  ORDERED     99               2026-11-28T23:59:59.999Z
EOF
expect_out
ok

name="query totals prints one row"
run query totals --db "$db"
expect_rc 0
cat >"$tmp/expected" <<'EOF'
orders_placed  orders_paid  placed_amount  paid_amount
            2            2           1349         1750
EOF
expect_out
ok

name="query daily prints one row per day in order"
run query daily --db "$db"
expect_rc 0
cat >"$tmp/expected" <<'EOF'
day         orders_placed  orders_paid  placed_amount  paid_amount
2026-11-27              1            1           1250         1250
2026-11-28              1            1             99          500
EOF
expect_out
ok

name="query dead-letters escapes and cuts the bytes received"
run query dead-letters --db "$db"
expect_rc 0
cat >"$tmp/expected" <<'EOF'
topic   partition  offset  key  value                                                         reason                                       received_at
orders          0       3       {"id":"x","type":"OrderPlaced","aggregateId":"o-1","occur...  invalid occurredAt: no such day: 2026-02-30  2026-11-27T10:21:00.000Z
orders          1       7  o-9  {"i":\xFF\n}                                                  invalid UTF-8                                2026-11-27T10:20:00.000Z
EOF
expect_out
ok

# ---- JSON Lines ----
name="query orders --json"
run query orders --db "$db" --json
expect_rc 0
cat >"$tmp/expected" <<'EOF'
{"order_id":"o-1001","status":"PAID","total":1250,"paid_amount":1250,"placed_at":"2026-11-27T10:15:30.123Z","paid_at":"2026-11-27T10:16:02.000Z"}
{"order_id":"o-1002","status":"PAID","total":null,"paid_amount":500,"placed_at":null,"paid_at":"2026-11-28T09:00:00.000Z"}
{"order_id":"o-1003-é","status":"ORDERED","total":99,"paid_amount":null,"placed_at":"2026-11-28T23:59:59.999Z","paid_at":null}
EOF
expect_out
ok

name="query totals --json prints exactly one line"
run query --json totals --db "$db"
expect_rc 0
cat >"$tmp/expected" <<'EOF'
{"orders_placed":2,"orders_paid":2,"placed_amount":1349,"paid_amount":1750}
EOF
expect_out
ok

name="query daily --json"
run query daily --json --db "$db"
expect_rc 0
cat >"$tmp/expected" <<'EOF'
{"day":"2026-11-27","orders_placed":1,"orders_paid":1,"placed_amount":1250,"paid_amount":1250}
{"day":"2026-11-28","orders_placed":1,"orders_paid":1,"placed_amount":99,"paid_amount":500}
EOF
expect_out
ok

name="query dead-letters --json: whole values, bad bytes as U+FFFD"
run query dead-letters --db "$db" --json
expect_rc 0
cat >"$tmp/expected" <<'EOF'
{"topic":"orders","partition":0,"offset":3,"key":null,"value":"{\"id\":\"x\",\"type\":\"OrderPlaced\",\"aggregateId\":\"o-1\",\"occurredAt\":\"2026-02-30T00:00:00Z\",\"payload\":{\"orderId\":\"o-1\",\"total\":1}}","reason":"invalid occurredAt: no such day: 2026-02-30","received_at":"2026-11-27T10:21:00.000Z"}
{"topic":"orders","partition":1,"offset":7,"key":"o-9","value":"{\"i\":\ufffd\n}","reason":"invalid UTF-8","received_at":"2026-11-27T10:20:00.000Z"}
EOF
expect_out
ok

name="query reads while a writer holds its transaction open (WAL)"
coproc writer { sqlite3 "$db" 2>&1; }
writer_pid=$writer_PID # bash unsets writer_PID once it ends
echo "BEGIN IMMEDIATE; UPDATE order_totals SET orders_placed = 99;" \
        "SELECT 'locked';" >&"${writer[1]}"
read -r -t 10 line <&"${writer[0]}" || line=
[ "$line" = locked ] || fail "expected sqlite3 to take the write lock"
run query totals --db "$db" --json
expect_rc 0
grep -q '"orders_placed":2,' "$tmp/out" ||
        fail "expected the committed totals, got: $(cat "$tmp/out")"
echo "COMMIT; SELECT 'committed';" >&"${writer[1]}"
read -r -t 10 line <&"${writer[0]}" || line=
[ "$line" = committed ] || fail "expected sqlite3 to commit, got: $line"
run query totals --db "$db" --json
expect_rc 0
grep -q '"orders_placed":99,' "$tmp/out" ||
        fail "expected the new totals, got: $(cat "$tmp/out")"
exec {writer[1]}>&- # sqlite3 sees the end of its input and exits
wait "$writer_pid"
writer_pid=
ok
