#!/usr/bin/env bash
# Configuration and logging end to end (issue 4 and 5): -F FILE (kcat's
# format) with secrets that never reach a log, even with -v and
# librdkafka's debug=all; -X over -F whatever their order, -b over a
# file's bootstrap.servers; bad files exit 2 naming file and line but not
# the value; the warning for a secret file others can read; the log line
# format; -v shows debug lines, -q drops info and warnings but not errors.
set -u

of=${ORDERFLOW:-build/orderflow}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/orderflow-config.XXXXXX") || exit 1
. "$(dirname "$0")/../lib.sh"
broker_pid=
cleanup() {
        # every broker started, also one left by a check that failed
        kill -9 $(jobs -p) 2>/dev/null
        wait 2>/dev/null
        rm -rf "$tmp"
}
trap cleanup EXIT
app=$tmp/app.db
rm_db=$tmp/rm.db
nodb=$tmp/no/such/dir/rm.db # project fails at the store, after the config
name=setup
fast=(-X session.timeout.ms=6000 -X heartbeat.interval.ms=500)
# YYYY-MM-DDTHH:MM:SS.mmmZ, a level letter, the message
line_re='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z [EWID] [^ ]'

[ -x "$of" ] || fail "no binary at $of (run make first)"
start_broker -t orders -p 2 ||
        fail "the broker printed no address in 10 s"
for i in 1 2 3; do
        "$of" place --db "$app" --order "o-$i" --total "$i" >/dev/null ||
                fail "place o-$i"
done

# ---- secrets in a -F file ----
name="-F secrets never appear in logs (-v, debug=all)"
cat >"$tmp/kafka.properties" <<PROPS
# written by config.sh
  bootstrap.servers = $addr

sasl.username=someone
sasl.password = File-Pa55-Secret
ssl.key.password=File-Key-Secret
PROPS
chmod 600 "$tmp/kafka.properties"
"$of" relay --db "$app" --once -v -F "$tmp/kafka.properties" \
        -X debug=all 2>"$tmp/relay.err" || fail "relay exited $?"
"$of" project --db "$rm_db" -e -v -F "$tmp/kafka.properties" \
        "${fast[@]}" -X debug=all 2>"$tmp/project.err" ||
        fail "project exited $?"
[ "$(sqlite3 "$rm_db" 'SELECT orders_placed FROM order_totals')" = 3 ] ||
        fail "the file's bootstrap.servers did not lead to the broker"
for f in relay.err project.err; do
        grep -q 'CONF: .*sasl.password = ' "$tmp/$f" ||
                fail "$f: debug=all logged no configuration (test is blind)"
        grep -q 'kafka conf: -F sasl.password=\*\*\*$' "$tmp/$f" ||
                fail "$f: no debug line 'kafka conf: -F sasl.password=***'"
        ! grep -q -e 'File-Pa55-Secret' -e 'File-Key-Secret' "$tmp/$f" ||
                fail "$f shows a secret: $(grep -m1 -e Secret "$tmp/$f")"
done
ok

# ---- the log line ----
name="every log line is 'YYYY-MM-DDTHH:MM:SS.mmmZ L message'"
for f in relay.err project.err; do
        bad=$(grep -c -v -E "$line_re" "$tmp/$f")
        [ "$bad" -eq 0 ] || fail "$f: $bad other lines, e.g. \
$(grep -m1 -v -E "$line_re" "$tmp/$f")"
done
grep -q -E "$line_re" "$tmp/project.err" || fail "no log line at all"
ok

# ---- which wins ----
name="-X wins over -F whatever the order; -b wins over the file"
echo "client.id=from-file" >"$tmp/id.properties"
for order in "-F $tmp/id.properties -X client.id=from-x" \
             "-X client.id=from-x -F $tmp/id.properties"; do
        # shellcheck disable=SC2086 # two options in each order
        "$of" relay --db "$app" --once -v -b "$addr" $order -X debug=conf \
                2>"$tmp/id.err" || fail "relay $order exited $?"
        grep -q 'CONF: .* client.id = from-x$' "$tmp/id.err" ||
                fail "$order: librdkafka did not get client.id=from-x"
        grep -q 'kafka from-x#producer' "$tmp/id.err" ||
                fail "$order: the client is not named from-x"
        ! grep -q 'from-file#' "$tmp/id.err" ||
                fail "$order: a client is named from-file"
done
for order in "-b cli:1 -F $tmp/kafka.properties" \
             "-F $tmp/kafka.properties -b cli:1"; do
        # shellcheck disable=SC2086
        "$of" project --db "$nodb" -v $order 2>"$tmp/b.err"
        [ $? -eq 1 ] || fail "project $order: expected exit 1 (no db dir)"
        grep -q 'kafka conf: bootstrap.servers=cli:1,' "$tmp/b.err" ||
                fail "$order: -b lost to the file: $(grep bootstrap \
                        "$tmp/b.err")"
done
ok

# ---- bad files ----
name="-F errors: exit 2, one line naming file (and line), never the value"
"$of" relay --db "$app" -F "$tmp/missing.properties" 2>"$tmp/err"
[ $? -eq 2 ] || fail "a missing file: expected exit 2"
want="orderflow relay: -F $tmp/missing.properties: No such file or directory"
[ "$(cat "$tmp/err")" = "$want" ] || fail "missing file: $(cat "$tmp/err")"
printf '# ok\nclient.id=a\nsasl.password Bad-Secret-1\n' >"$tmp/bad1"
printf 'sasl.passwrd=Bad-Secret-2\n' >"$tmp/bad2"
printf 'session.timeout.ms=soon\n' >"$tmp/bad3"
for c in "bad1:3: expected key=value" \
         "bad2:1: sasl.passwrd: No such configuration property" \
         "bad3:1: session.timeout.ms: Invalid value"; do
        f=${c%%:*}
        "$of" project --db "$rm_db" -F "$tmp/$f" 2>"$tmp/err"
        [ $? -eq 2 ] || fail "$f: expected exit 2"
        [ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "$f: not one line"
        grep -q "^orderflow project: -F $tmp/$c" "$tmp/err" ||
                fail "$f: $(cat "$tmp/err")"
        ! grep -q Bad-Secret "$tmp/err" || fail "$f shows the value"
done
"$of" project --db "$rm_db" -F "$tmp" 2>"$tmp/err"
[ $? -eq 2 ] && grep -q "^orderflow project: -F $tmp: Is a directory" \
        "$tmp/err" || fail "a directory: $(cat "$tmp/err")"
ok

name="a -F file with a secret that others can read: a warning, not an error"
chmod 644 "$tmp/kafka.properties"
"$of" project --db "$nodb" -F "$tmp/kafka.properties" 2>"$tmp/err"
[ $? -eq 1 ] || fail "expected exit 1 (no db dir), not a usage error"
grep -q -E " W -F $tmp/kafka.properties: holds a secret.*chmod 600" \
        "$tmp/err" || fail "no warning: $(cat "$tmp/err")"
"$of" project --db "$nodb" -q -F "$tmp/kafka.properties" 2>"$tmp/err"
! grep -q ' W ' "$tmp/err" || fail "-q shows the warning"
chmod 600 "$tmp/kafka.properties"
"$of" project --db "$nodb" -F "$tmp/kafka.properties" 2>"$tmp/err"
! grep -q 'holds a secret' "$tmp/err" || fail "warned about a 0600 file"
ok

name="-X message.max.bytes above the projector's fetch.max.bytes is taken"
# The projector bounds a fetch to 512 KiB; librdkafka refuses a fetch.max.bytes
# below message.max.bytes, so a user's larger message.max.bytes raises it.
for cmd in project rebuild; do
        rm -f "$tmp/mmb.db"*
        "$of" project --db "$tmp/mmb.db" -b "$addr" -e -q "${fast[@]}" \
                2>/dev/null || fail "project to fill mmb.db exited $?"
        [ "$cmd" = rebuild ] && set -- --force || set -- -e "${fast[@]}"
        "$of" "$cmd" --db "$tmp/mmb.db" -b "$addr" -q "$@" \
                -X message.max.bytes=4000000 >/dev/null 2>"$tmp/err" ||
                fail "$cmd -X message.max.bytes=4000000 exited $?:" \
                        "$(head -1 "$tmp/err")"
        "$of" "$cmd" --db "$tmp/mmb.db" -b "$addr" -q "$@" \
                -X message.max.bytes=4000000 -X fetch.max.bytes=2000000 \
                >/dev/null 2>"$tmp/err"
        [ $? -eq 1 ] && grep -q "fetch.max.bytes. must be" "$tmp/err" ||
                fail "$cmd: a fetch.max.bytes the user set below" \
                        "message.max.bytes: $(head -1 "$tmp/err")"
done
ok

# ---- -v and -q ----
name="-v shows debug lines, the default info, -q errors only"
grep -q -E "$line_re" "$tmp/project.err" &&
        grep -q ' D ' "$tmp/project.err" || fail "-v: no debug line"
"$of" project --db "$rm_db" -b "$addr" -e "${fast[@]}" 2>"$tmp/p.err" ||
        fail "project exited $?"
grep -q ' I applied' "$tmp/p.err" || fail "no info summary by default"
! grep -q ' D ' "$tmp/p.err" || fail "debug lines without -v"
"$of" project --db "$rm_db" -b "$addr" -e -q "${fast[@]}" 2>"$tmp/p.err" ||
        fail "project -q exited $?"
[ ! -s "$tmp/p.err" ] || fail "project -q logged: $(head -1 "$tmp/p.err")"
# A broker nobody answers: librdkafka's connection errors stay, the
# warning and the summary go.
"$of" place --db "$app" --order o-4 --total 4 >/dev/null || fail "place"
"$of" relay --db "$app" -b 127.0.0.1:1 --once -q 2>"$tmp/q.err"
[ $? -eq 1 ] || fail "relay to no broker: expected exit 1"
grep -q -E '^[0-9T:.-]+Z E kafka .*Connection refused' "$tmp/q.err" ||
        fail "-q hid librdkafka's errors: $(cat "$tmp/q.err")"
! grep -q -E 'Z [WID] ' "$tmp/q.err" ||
        fail "-q let through: $(grep -m1 -E 'Z [WID] ' "$tmp/q.err")"
grep -q '^orderflow relay: no broker' "$tmp/q.err" ||
        fail "-q hid the final error"
"$of" demo --orders 20 --dir "$tmp/demo" -q >/dev/null 2>"$tmp/d.err" ||
        fail "demo -q exited $?"
[ ! -s "$tmp/d.err" ] || fail "demo -q logged: $(head -1 "$tmp/d.err")"
"$of" demo --orders 20 --dir "$tmp/demo2" -v >/dev/null 2>"$tmp/d.err" ||
        fail "demo -v exited $?"
grep -q ' I ' "$tmp/d.err" || fail "demo -v: no info line"
ok

# Found 2026-12: the last line of a failing command had no "<N>", so
# `journalctl -p warning` hid why a unit stopped.
name="under systemd every stderr line carries its priority, the last too"
: >"$tmp/journal"
journal=$(stat -c '%d:%i' "$tmp/journal")
JOURNAL_STREAM=$journal "$of" relay --db "$app" -b 127.0.0.1:1 --once \
        2>>"$tmp/journal"
[ $? -eq 1 ] || fail "relay to no broker: expected exit 1"
JOURNAL_STREAM=$journal "$of" project --db "$nodb" -b "$addr" -v \
        2>>"$tmp/journal" && fail "project on no file: expected exit 1"
JOURNAL_STREAM=$journal "$of" status --bogus 2>>"$tmp/journal"
[ $? -eq 2 ] || fail "a bad option: expected exit 2"
JOURNAL_STREAM=$journal "$of" bogus 2>>"$tmp/journal"
grep -q '^<3>orderflow relay: no broker' "$tmp/journal" ||
        fail "the relay's last line: $(grep 'orderflow relay' "$tmp/journal")"
grep -q '^<3>orderflow project: ' "$tmp/journal" || fail "project's last line"
grep -q '^<3>orderflow status: --bogus: unknown option' "$tmp/journal" ||
        fail "the usage line: $(grep 'status' "$tmp/journal")"
grep -q '^<3>orderflow: .bogus. is not a command' "$tmp/journal" ||
        fail "the unknown command"
! grep -v -E '^<[3-7]>' "$tmp/journal" | grep . >"$tmp/bare" ||
        fail "lines without a priority: $(head -2 "$tmp/bare")"
ok

name="broker -q logs nothing, -v logs librdkafka's debug lines"
first_broker=$broker_pid
for v in -q -v; do
        OF_TEST_BROKER= start_broker "$v" ||
                fail "broker $v printed no address in 10 s"
        kill -INT "$broker_pid"
        wait "$broker_pid" || fail "broker $v exited $?"
        case $v in
        -q) [ ! -s "$tmp/broker.err" ] ||
                fail "broker -q logged: $(head -1 "$tmp/broker.err")" ;;
        -v) grep -q ' D rdkafka ' "$tmp/broker.err" ||
                fail "broker -v: no debug line" ;;
        esac
done
broker_pid=$first_broker
ok
