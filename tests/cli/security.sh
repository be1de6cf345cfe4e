#!/usr/bin/env bash
# Security end to end (issue 5): hostile strings (quotes, SQL fragments,
# backslashes, non-ASCII) in every field travel place -> relay -> project
# and come out byte for byte, with the schema untouched; a U+0000 inside an
# id, aggregateId or orderId is a dead letter, never a shortened id; -X
# secrets never reach the logs, even with -v and librdkafka's debug=all;
# created databases get the mode docs/reference.md states (the umask's).
set -u

of=${ORDERFLOW:-build/orderflow}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/orderflow-security.XXXXXX") || exit 1
. "$(dirname "$0")/../lib.sh"
broker_pid=
cleanup() {
        [ -n "$broker_pid" ] && kill -9 "$broker_pid" 2>/dev/null
        wait 2>/dev/null
        rm -rf "$tmp"
}
trap cleanup EXIT
app=$tmp/app.db
rm_db=$tmp/rm.db
name=setup
fast=(-X session.timeout.ms=6000 -X heartbeat.interval.ms=500)
secrets=(-X sasl.username=someone -X sasl.password=Pa55-SuperSecret
         -X ssl.key.password=Key-Secret-456 -X debug=all)


[ -x "$of" ] || fail "no binary at $of (run make first)"
start_broker -t orders -p 3 ||
        fail "the broker printed no address in 10 s"

# ---- hostile order ids through the whole pipeline ----
name="hostile order ids come out byte for byte"
ids=(
        "o'); DROP TABLE order_list; --"
        'o"; DELETE FROM processed_events; --'
        "o\\\\u0000 not a nul, a backslash"
        "o-ünï-€-𝄞"
        "o' OR '1'='1"
        "o%s%n%x"
)
umask 022
for i in "${!ids[@]}"; do
        "$of" place --db "$app" --order "${ids[$i]}" --total "$((i + 1))" \
                >/dev/null || fail "place ${ids[$i]}"
done
"$of" pay --db "$app" --order "${ids[0]}" --amount 1 >/dev/null ||
        fail "pay ${ids[0]}"
"$of" relay --db "$app" -b "$addr" --once -v "${secrets[@]}" \
        2>"$tmp/relay.err" || fail "relay exited $?"
"$of" project --db "$rm_db" -b "$addr" -e -v "${fast[@]}" "${secrets[@]}" \
        2>"$tmp/project.err" || fail "project exited $?"
printf '%s\n' "${ids[@]}" | sort >"$tmp/want"
sqlite3 "$rm_db" 'SELECT order_id FROM order_list' | sort >"$tmp/got"
cmp -s "$tmp/want" "$tmp/got" ||
        fail "order ids differ: $(diff "$tmp/want" "$tmp/got" | head -5)"
[ "$(sqlite3 "$rm_db" "SELECT count(*) FROM processed_events")" = 7 ] ||
        fail "processed_events does not hold 7 events"
[ "$(sqlite3 "$rm_db" "SELECT status FROM order_list WHERE order_id =
        'o''); DROP TABLE order_list; --'")" = PAID ] ||
        fail "the paid hostile order is not PAID"
[ "$(sqlite3 "$rm_db" "SELECT orders_placed || ',' || placed_amount
        FROM order_totals")" = 6,21 ] || fail "totals differ"
ok

name="the schema is untouched"
want="daily_totals dead_letters order_list order_totals partition_offsets"
want="$want processed_events processed_recent processed_recent_since"
want="$want processed_runs schema_info store_info"
got=$(sqlite3 "$rm_db" "SELECT group_concat(name, ' ') FROM (SELECT name
        FROM sqlite_master WHERE type IN ('table', 'view') ORDER BY name)")
[ "$got" = "$want" ] || fail "relations: $got"
ok

# ---- U+0000 inside an id is a dead letter, never a shortened id ----
name="U+0000 in id, aggregateId or orderId is a dead letter"
nul='\u0000'
{
        printf 'k|{"id":"e-n1%sx","type":"OrderPlaced","aggregateId":"o-n1","occurredAt":"2026-11-27T10:00:00Z","payload":{"orderId":"o-n1","total":1}}\n' "$nul"
        printf 'k|{"id":"e-n2","type":"OrderPlaced","aggregateId":"o-n2%sx","occurredAt":"2026-11-27T10:00:00Z","payload":{"orderId":"o-n2%sx","total":1}}\n' "$nul" "$nul"
        printf 'k|{"id":"e-n3","type":"OrderPlaced","aggregateId":"o-n3","occurredAt":"2026-11-27T10:00:00Z","payload":{"orderId":"o-n3%sx","total":1}}\n' "$nul"
        printf 'k|{"id":"e-n1","type":"OrderPlaced","aggregateId":"o-n4","occurredAt":"2026-11-27T10:00:00Z","payload":{"orderId":"o-n4","total":1}}\n'
} | kcat -P -b "$addr" -t orders -K '|' -p 0 || fail "kcat could not publish"
"$of" project --db "$rm_db" -b "$addr" -e "${fast[@]}" 2>"$tmp/p2.err" ||
        fail "project exited $?"
got=$(sqlite3 "$rm_db" "SELECT group_concat(reason, '|') FROM (SELECT
        reason FROM dead_letters ORDER BY offset)")
want="invalid id: contains U+0000|invalid aggregateId: contains U+0000|"
want="${want}invalid payload.orderId: contains U+0000"
[ "$got" = "$want" ] || fail "dead letters: $got"
# e-n1 (the whole id, applied by the fourth message) is not mistaken for
# the first message's "e-n1<NUL>x"
[ "$(sqlite3 "$rm_db" "SELECT aggregate_id FROM processed_events WHERE
        event_id = 'e-n1'")" = o-n4 ] || fail "e-n1 is not o-n4's"
ok

# ---- secrets ----
name="-X secrets never appear in logs (-v, debug=all)"
for f in relay.err project.err; do
        [ -s "$tmp/$f" ] || fail "$f is empty: nothing was logged"
        grep -q 'sasl.password' "$tmp/$f" ||
                fail "$f: debug=all logged no configuration (test is blind)"
        ! grep -q -e 'Pa55-SuperSecret' -e 'Key-Secret-456' "$tmp/$f" ||
                fail "$f shows a secret: $(grep -m1 -e Secret "$tmp/$f")"
done
ok

name="a bad -X names the property, not the value"
"$of" project --db "$rm_db" -b "$addr" -X sasl.passwordd=Pa55-SuperSecret \
        2>"$tmp/bad.err" && fail "an unknown property was accepted"
! grep -q Pa55-SuperSecret "$tmp/bad.err" ||
        fail "the error shows the value: $(cat "$tmp/bad.err")"
grep -q 'sasl.passwordd' "$tmp/bad.err" ||
        fail "the error does not name the property: $(cat "$tmp/bad.err")"
ok

# ---- file modes ----
name="databases are created with the umask's mode (0644 under 022)"
for f in "$app" "$rm_db"; do
        [ "$(stat -c %a "$f")" = 644 ] || fail "$f is $(stat -c %a "$f")"
done
umask 077
"$of" place --db "$tmp/private.db" --order o-1 --total 1 >/dev/null ||
        fail "place into a new file"
[ "$(stat -c %a "$tmp/private.db")" = 600 ] ||
        fail "under umask 077 the file is $(stat -c %a "$tmp/private.db")"
ok
