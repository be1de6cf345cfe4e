#!/usr/bin/env bash
# orderflow place, pay and outbox end to end (no broker needed): exit codes
# 0/1/2 with their one-line messages, the event ids printed, `outbox status`
# in both forms after place/pay and after rows are marked sent by hand with
# sqlite3, retry and prune, and that outbox commands never create a file.
set -u

of=${ORDERFLOW:-build/orderflow}
. "$(dirname "$0")/../lib.sh"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/orderflow-writer.XXXXXX") || exit 1
cleanup() {
        rm -rf "$tmp"
}
trap cleanup EXIT
db=$tmp/app.db
name=setup

# Success printing one UUIDv7 (RFC 9562): sets id.
expect_event_id() {
        expect_rc 0
        [ ! -s "$tmp/err" ] ||
                fail "expected no stderr, got: $(cat "$tmp/err")"
        [ "$(wc -l <"$tmp/out")" -eq 1 ] ||
                fail "expected one stdout line, got: $(cat "$tmp/out")"
        id=$(cat "$tmp/out")
        local h='[0-9a-f]'
        [[ $id =~ ^$h{8}-$h{4}-7$h{3}-[89ab]$h{3}-$h{12}$ ]] ||
                fail "expected a UUIDv7, got: $id"
}

sql() {
        sqlite3 "$db" "$@" || fail "sqlite3 $*"
}

[ -x "$of" ] || fail "no binary at $of (run make first)"
command -v sqlite3 >/dev/null || fail "sqlite3 is needed to check the file"

# ---- help ----
for cmd in place pay outbox "outbox status" "outbox retry" "outbox prune"; do
        name="$cmd --help"
        # shellcheck disable=SC2086 # split "outbox status" on purpose
        run $cmd --help
        expect_rc 0
        [ ! -s "$tmp/err" ] ||
                fail "expected no stderr, got: $(cat "$tmp/err")"
        grep -q "^usage: orderflow $cmd" "$tmp/out" ||
                fail "expected 'usage: orderflow $cmd' on stdout"
        ok
done

# ---- usage errors: exit 2, one line, and no file created ----
long=$(printf 'x%.0s' $(seq 129))
while IFS='|' read -r want args; do
        name="place ${args//$db/app.db} is a usage error"
        # shellcheck disable=SC2086 # the arguments are split on purpose
        run place $args
        expect_usage "$want"
        ok
done <<EOF
--db|--order o-1 --total 5
--order|--db $db --total 5
--total|--db $db --order o-1
--total|--db $db --order o-1 --total -1
--total|--db $db --order o-1 --total 1.5
--total|--db $db --order o-1 --total 12abc
--total|--db $db --order o-1 --total 9007199254740992
--total|--db $db --order o-1 --total
--order|--db $db --order $long --total 5
--bogus|--db $db --order o-1 --total 5 --bogus
stray|--db $db --order o-1 --total 5 stray
EOF

name="place with an empty order id is a usage error"
run place --db "$db" --order "" --total 5
expect_usage "--order"
ok

name="place with an empty --db is a usage error"
run place --db "" --order o-1 --total 9007199254740991
expect_usage "--db"
ok

while IFS='|' read -r want args; do
        name="pay ${args//$db/app.db} is a usage error"
        # shellcheck disable=SC2086 # the arguments are split on purpose
        run pay $args
        expect_usage "$want"
        ok
done <<EOF
--db|--order o-1 --amount 5
--order|--db $db --amount 5
--amount|--db $db --order o-1
--amount|--db $db --order o-1 --amount x
--amount|--db $db --order o-1 --amount -5
--amount|--db $db --order o-1 --amount 9007199254740992
--order|--db $db --order $long --amount 5
EOF

while IFS='|' read -r want args; do
        name="outbox ${args//$db/app.db} is a usage error"
        # shellcheck disable=SC2086 # the arguments are split on purpose
        run outbox $args
        expect_usage "$want"
        ok
done <<EOF
orderflow outbox:|
frobnicate|frobnicate --db $db
--db|status
--csv|status --db $db --csv
--db|retry --all-dead
--id|retry --db $db
--id|retry --db $db --id x --all-dead
--db|prune --older-than 7d
--older-than|prune --db $db
5x|prune --db $db --older-than 5x
-5s|prune --db $db --older-than -5s
1.5h|prune --db $db --older-than 1.5h
7D|prune --db $db --older-than 7D
s|prune --db $db --older-than s
3600|prune --db $db --older-than 3600
0s|prune --db $db --older-than 0s
99999999999999999999d|prune --db $db --older-than 99999999999999999999d
3651d|prune --db $db --older-than 3651d
EOF

name="usage errors create no database"
[ ! -e "$db" ] || fail "expected $db not to exist yet"
ok

# ---- outbox commands never create a database ----
for sub in "status" "status --json" "retry --all-dead" "retry --id x" \
        "prune --older-than 7d"; do
        name="outbox $sub on a missing file exits 1 and creates nothing"
        # shellcheck disable=SC2086 # the arguments are split on purpose
        run outbox $sub --db "$db"
        expect_failure \
                "orderflow outbox ${sub%% *}: no application database at $db"
        [ ! -e "$db" ] || fail "expected $db not to be created"
        ok
done

# ---- place and pay ----
name="place creates the database, prints the event id and exits 0"
run place --db "$db" --order o-1 --total 1250
expect_event_id
place_id=$id
[ -f "$db" ] || fail "expected $db to be created"
[ "$(sql "SELECT status || ' ' || total FROM orders WHERE order_id = 'o-1'")" \
        = "ORDERED 1250" ] || fail "expected o-1 ORDERED 1250 in orders"
[ "$(sql "SELECT count(*) FROM outbox_messages WHERE id = '$place_id' AND
        type = 'OrderPlaced' AND status = 'PENDING'")" = 1 ] ||
        fail "expected one pending OrderPlaced outbox row with id $place_id"
ok

name="place of an existing order exits 1"
run place --db "$db" --order o-1 --total 7
expect_failure "orderflow place: order o-1 exists already"
[ "$(sql "SELECT count(*) FROM outbox_messages")" = 1 ] ||
        fail "expected no new outbox row"
ok

name="pay of an unknown order exits 1"
run pay --db "$db" --order o-404 --amount 5
expect_failure "orderflow pay: order o-404 does not exist"
ok

name="pay prints the event id and exits 0"
run pay --db "$db" --order o-1 --amount 1250
expect_event_id
pay_id=$id
[ "$pay_id" != "$place_id" ] || fail "expected a new event id"
[ "$(sql "SELECT status || ' ' || paid_amount FROM orders")" = "PAID 1250" ] ||
        fail "expected o-1 PAID 1250 in orders"
ok

name="pay of a paid order exits 1"
run pay --db "$db" --order o-1 --amount 1250
expect_failure "orderflow pay: order o-1 is paid already"
[ "$(sql "SELECT count(*) FROM outbox_messages")" = 2 ] ||
        fail "expected no new outbox row"
ok

name="place of an id that is not UTF-8 exits 1 with one line"
run place --db "$db" --order $'o-\xff' --total 5
expect_rc 1
[ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q '^orderflow place: ' "$tmp/err" ||
        fail "expected one line 'orderflow place: ...', got: $(cat "$tmp/err")"
[ "$(sql "SELECT count(*) FROM orders")" = 1 ] || fail "expected no new order"
ok

name="place of a 128-byte id and a total of 2^53-1 exits 0"
run place --db "$db" --order "${long:1}" --total 9007199254740991
expect_event_id
ok

name="place into a folder that does not exist exits 1"
run place --db "$tmp/no/such/dir/app.db" --order o-1 --total 5
expect_rc 1
[ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q '^orderflow place: ' "$tmp/err" ||
        fail "expected one line 'orderflow place: ...', got: $(cat "$tmp/err")"
ok

# ---- outbox status ----
name="outbox status --json counts pending rows"
run outbox status --db "$db" --json
expect_rc 0
[ "$(wc -l <"$tmp/out")" -eq 1 ] ||
        fail "expected one line, got: $(cat "$tmp/out")"
grep -Eq '^\{"pending":3,"sent":0,"dead":0,'\
'"oldest_pending_age_s":[0-9]+(\.[0-9]+)?\}$' "$tmp/out" ||
        fail "unexpected status: $(cat "$tmp/out")"
ok

name="outbox status --json: the age is that of the oldest pending row"
sql "UPDATE outbox_messages SET occurred_at = '2000-01-01T00:00:00.000Z'
     WHERE id = '$place_id'"
run outbox status --json --db "$db"
expect_rc 0
age=$(sed -n 's/.*"oldest_pending_age_s":\([0-9.]*\)}$/\1/p' "$tmp/out")
[ -n "$age" ] && [ "${age%%.*}" -gt 800000000 ] ||
        fail "expected an age of over 25 years, got: $(cat "$tmp/out")"
ok

name="outbox status prints an aligned table"
run outbox status --db "$db"
expect_rc 0
[ "$(head -3 "$tmp/out")" = "pending             3
sent                0
dead                0" ] || fail "unexpected table: $(cat "$tmp/out")"
grep -Eq '^oldest pending age  [0-9]+\.[0-9]{3} s$' "$tmp/out" ||
        fail "expected the oldest pending age, got: $(cat "$tmp/out")"
ok

name="outbox status after every row is sent: pending 0, age null"
sql "UPDATE outbox_messages SET status = 'SENT',
     sent_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
run outbox status --db "$db" --json
expect_ok_out '{"pending":0,"sent":3,"dead":0,"oldest_pending_age_s":null}'
run outbox status --db "$db"
expect_rc 0
grep -q '^oldest pending age  none$' "$tmp/out" ||
        fail "expected 'none' as the age, got: $(cat "$tmp/out")"
ok

# ---- retry ----
name="outbox retry --id puts one DEAD row back to PENDING"
sql "UPDATE outbox_messages SET status = 'DEAD', attempts = 10,
     next_attempt_at = 99999999999999, sent_at = NULL"
run outbox retry --db "$db" --id "$place_id"
expect_ok_out "1 row reset from DEAD to PENDING"
[ "$(sql "SELECT status || attempts || next_attempt_at FROM outbox_messages
          WHERE id = '$place_id'")" = PENDING00 ] ||
        fail "expected the row PENDING with attempts and backoff reset"
ok

name="outbox retry --id of a row that is not DEAD exits 1"
run outbox retry --db "$db" --id "$place_id"
expect_failure "orderflow outbox retry: no DEAD outbox row with id $place_id"
run outbox retry --db "$db" --id nothing
expect_failure "orderflow outbox retry: no DEAD outbox row with id nothing"
ok

name="outbox retry --all-dead puts every DEAD row back"
run outbox retry --db "$db" --all-dead
expect_ok_out "2 rows reset from DEAD to PENDING"
run outbox status --db "$db" --json
expect_rc 0
grep -q '^{"pending":3,"sent":0,"dead":0,"oldest_pending_age_s":[0-9.]*}$' \
        "$tmp/out" || fail "expected 3 pending rows, got: $(cat "$tmp/out")"
run outbox retry --db "$db" --all-dead
expect_ok_out "0 rows reset from DEAD to PENDING"
ok

# ---- prune ----
name="outbox prune deletes only SENT rows older than the duration"
sql "UPDATE outbox_messages SET status = 'SENT',
     sent_at = '2000-01-01T00:00:00.000Z' WHERE id = '$place_id';
     UPDATE outbox_messages SET status = 'SENT',
     sent_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-2 hours')
     WHERE id = '$pay_id'"
run outbox prune --db "$db" --older-than 7d
expect_ok_out "1 SENT row deleted"
[ "$(sql "SELECT count(*) FROM outbox_messages
          WHERE id = '$place_id'")" = 0 ] ||
        fail "expected the old SENT row gone"
run outbox prune --db "$db" --older-than 3h
expect_ok_out "0 SENT rows deleted"
run outbox prune --db "$db" --older-than 1h
expect_ok_out "1 SENT row deleted"
[ "$(sql "SELECT count(*) || status FROM outbox_messages")" = 1PENDING ] ||
        fail "expected the PENDING row kept"
ok

name="outbox prune accepts every unit"
for d in 1s 30s 15m 12h 7d 3650d; do
        run outbox prune --db "$db" --older-than "$d"
        expect_ok_out "0 SENT rows deleted"
done
ok

name="outbox prune of 2500 rows"
sql "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n
     WHERE i < 2500) INSERT INTO outbox_messages (id, type, aggregate_id,
     occurred_at, status, sent_at) SELECT 'e-' || i, 'OrderPlaced',
     'x-' || i, '2000-01-01T00:00:00.000Z', 'SENT',
     '2000-01-01T00:00:00.000Z' FROM n;
     INSERT INTO outbox_payloads SELECT seq, '{}' FROM outbox_messages
     WHERE aggregate_id LIKE 'x-%'"
run outbox prune --db "$db" --older-than 1d
expect_ok_out "2500 SENT rows deleted"
[ "$(sql "SELECT count(*) FROM outbox_payloads p LEFT JOIN outbox_messages m
     ON m.seq = p.seq WHERE m.seq IS NULL")" = 0 ] ||
        fail "expected no envelope left without its row"
ok
