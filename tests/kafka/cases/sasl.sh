#!/usr/bin/env bash
# SASL on real Kafka: the clients' listener requires SASL (broker.sh --sasl:
# SASL/PLAIN, see there why not SCRAM) and the credentials come only from a
# -F file. relay, project -e, status and rebuild all work with it; the
# secret (sasl.password) is in no line they print, also with -v and
# -X debug=all; with a wrong password each exits 1 within 60 s (no hang)
# with one "orderflow CMD: ..." line that says authentication failed, and
# prints neither password.
set -u
of=${ORDERFLOW:-build/orderflow} # before lib.sh: its $kadmin is beside $of
. "$(dirname "$0")/../../lib.sh"
. "$(dirname "$0")/../lib.sh"
kafka_case sasl
app=$tmp/app.db db=$tmp/rm.db props=$tmp/client.properties

name=setup
start_broker -t orders -p 2 --sasl "$props" ||
        fail "the broker printed no address in $broker_wait s"
secret=$(sed -n 's/^sasl.password=//p' "$props")
[ -n "$secret" ] || fail "no sasl.password in $props"
grep -q '^security.protocol=SASL_PLAINTEXT$' "$props" ||
        fail "$props: not SASL_PLAINTEXT"
# Without credentials the listener refuses (else the test is blind).
timeout 60 "$of" status --db "$db" -b "$addr" >/dev/null 2>&1
[ $? -eq 1 ] || fail "status without credentials: expected exit 1"
for i in 1 2 3 4 5; do
        "$of" place --db "$app" --order "o-$i" --total "$((i * 100))" \
                >/dev/null || fail "place o-$i"
done
"$of" pay --db "$app" --order o-2 --amount 200 >/dev/null || fail "pay o-2"
ok

# no_secret FILE...: none of them holds the secret or the wrong password.
no_secret() {
        local f
        for f in "$@"; do
                ! grep -q -F -e "$secret" -e Wrong-Pa55-Secret "$f" ||
                        fail "$(basename "$f") shows a password: $(grep -m1 \
                                -F -e "$secret" -e Wrong-Pa55-Secret "$f" |
                                sed -e "s/$secret/<secret>/g" | cut -c1-200)"
        done
}

name="relay, project -e, status, rebuild with -F: work, no secret (-v, debug=all)"
timeout 60 "$of" relay --db "$app" --once -b "$addr" -F "$props" -v \
        -X debug=all >"$tmp/relay.out" 2>"$tmp/relay.err" ||
        fail "relay exited $?: $(tail -1 "$tmp/relay.err")"
[ "$(sq "$app" "SELECT count(*) FROM outbox_messages WHERE status = 'SENT'")" = 6 ] ||
        fail "relay: not 6 rows sent"
timeout 120 "$of" project --db "$db" -b "$addr" -F "$props" -e -v \
        -X debug=all "${fast[@]}" >"$tmp/project.out" 2>"$tmp/project.err" ||
        fail "project -e exited $?: $(tail -1 "$tmp/project.err")"
[ "$(sq "$db" 'SELECT orders_placed || "|" || orders_paid || "|" ||
        placed_amount || "|" || paid_amount FROM order_totals')" = \
        "5|1|1500|200" ] || fail "project: totals $(sq "$db" \
        'SELECT * FROM order_totals')"
timeout 60 "$of" status --db "$db" -b "$addr" -F "$props" -v -X debug=all \
        --json >"$tmp/status.out" 2>"$tmp/status.err" ||
        fail "status exited $?: $(tail -1 "$tmp/status.err")"
grep -q '"lag":0,' "$tmp/status.out" ||
        fail "status: not lag 0: $(cat "$tmp/status.out")"
# (rebuild starts a level lower, at warnings: -v -v for its debug lines)
timeout 120 "$of" rebuild --db "$db" -b "$addr" -F "$props" -v -v -X debug=all \
        >"$tmp/rebuild.out" 2>"$tmp/rebuild.err" ||
        fail "rebuild exited $?: $(tail -1 "$tmp/rebuild.err")"
[ "$(sq "$db" 'SELECT orders_placed FROM order_totals')" = 5 ] ||
        fail "rebuild: not 5 orders"
for c in relay project status rebuild; do
        grep -q 'CONF: .*sasl.password = ' "$tmp/$c.err" ||
                fail "$c: debug=all logged no configuration (test is blind):" \
                        "$(grep -m3 -i 'conf\|sasl' "$tmp/$c.err" | cut -c1-150)"
        grep -q 'SASL' "$tmp/$c.err" ||
                fail "$c: no SASL in its debug log (test is blind)"
        no_secret "$tmp/$c.out" "$tmp/$c.err"
done
ok

# ---- a wrong password ----
sed 's/^sasl.password=.*/sasl.password=Wrong-Pa55-Secret/' "$props" \
        >"$tmp/wrong.properties"
chmod 600 "$tmp/wrong.properties"
"$of" place --db "$app" --order o-6 --total 600 >/dev/null || fail "place o-6"
totals="SELECT * FROM order_totals; SELECT * FROM partition_offsets"
sq "$db" "$totals" >"$tmp/before.txt" || fail "read the model"
unclear=
for c in relay project status rebuild; do
        name="$c with a wrong password: exit 1 within 60 s, one line"
        case $c in
        relay) args=(relay --db "$app" --once) ;;
        project) args=(project --db "$db" -e "${fast[@]}") ;;
        status) args=(status --db "$db") ;;
        rebuild) args=(rebuild --db "$db") ;;
        esac
        for v in "" -v; do
                t0=$(date +%s)
                timeout 60 "$of" "${args[@]}" -b "$addr" $v \
                        -F "$tmp/wrong.properties" >"$tmp/w.out" 2>"$tmp/w.err"
                rc=$?
                [ "$rc" -ne 124 ] || fail "still running after 60 s${v:+ ($v)}"
                [ "$rc" -eq 1 ] || fail "exit $rc${v:+ ($v)}: $(tail -1 \
                        "$tmp/w.err")"
                [ "$(grep -c "^orderflow $c: " "$tmp/w.err")" -eq 1 ] ||
                        fail "not one 'orderflow $c: ' line${v:+ ($v)}: \
$(tail -2 "$tmp/w.err" | cut -c1-200)"
                no_secret "$tmp/w.out" "$tmp/w.err"
        done
        [ "$(sq "$app" "SELECT status FROM outbox_messages
                WHERE aggregate_id = 'o-6'")" = PENDING ] ||
                fail "o-6 is no longer PENDING"
        # The line itself (without -v) should say why: authentication.
        grep "^orderflow $c: " "$tmp/w.err" | grep -q -i 'authenticat' ||
                unclear="$unclear
#   $c: $(grep "^orderflow $c: " "$tmp/w.err")"
        ok "$(($(date +%s) - t0)) s"
done
name="the read model unchanged by the failed commands"
sq "$db" "$totals" | cmp -s - "$tmp/before.txt" || fail "$db changed"
ok

name="the wrong-password line names the authentication failure"
[ -z "$unclear" ] || fail "these lines do not say authentication failed:\
$unclear"
ok
