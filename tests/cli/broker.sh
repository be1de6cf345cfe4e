#!/usr/bin/env bash
# orderflow broker end to end: usage errors, the address on the first
# line of stdout, the topic as kcat sees it, and a clean exit 0 on
# SIGTERM and SIGINT. Every wait is a bounded poll.
set -u

of=${ORDERFLOW:-build/orderflow}
. "$(dirname "$0")/../lib.sh"
unset OF_TEST_BROKER # this is the embedded broker's own test
tmp=$(mktemp -d "${TMPDIR:-/tmp}/orderflow-broker.XXXXXX") || exit 1
pids=()
cleanup() {
        local p
        for p in "${pids[@]}"; do
                kill -KILL "$p" 2>/dev/null
        done
        rm -rf "$tmp"
}
trap cleanup EXIT
name=setup

# start ARGS...: the broker with ARGS (lib.sh's start_broker, always the
# embedded one: this is its test); pid is its process, addr its address.
start() {
        start_broker "$@" ||
                fail "expected an address on stdout within $broker_wait s"
        pid=$broker_pid
        pids+=("$pid")
}

# Send signal $1 to the broker and expect exit 0 within 10 s, with only
# the address on stdout.
stop() {
        kill "-$1" "$pid" || fail "could not signal the broker"
        wait_for 10 "exit after $1" eval '! kill -0 "$pid" 2>/dev/null'
        wait "$pid"
        rc=$?
        [ "$rc" -eq 0 ] ||
                fail "expected exit 0 after $1, got $rc: $(cat "$tmp/broker.err")"
        [ "$(wc -l <"$tmp/broker.out")" -eq 1 ] ||
                fail "expected only the address on stdout: $(cat "$tmp/broker.out")"
}

# kcat's metadata for topic $1 must show $2 partitions.
expect_topic() {
        timeout 20 kcat -b "$addr" -L -t "$1" >"$tmp/meta" 2>&1 ||
                fail "kcat -L failed: $(cat "$tmp/meta")"
        grep -qF "topic \"$1\" with $2 partitions" "$tmp/meta" ||
                fail "expected topic $1 with $2 partitions," \
                        "got: $(cat "$tmp/meta")"
}

[ -x "$of" ] || fail "no binary at $of (run make first)"
command -v kcat >/dev/null || fail "kcat is needed to talk to the broker"

name="broker --help"
run broker --help
[ "$rc" -eq 0 ] || fail "expected exit 0, got $rc"
grep -q '^usage: orderflow broker' "$tmp/out" || fail "expected usage on stdout"
ok

name="broker -p 0 is a usage error"
run broker -p 0
expect_usage "--partitions"
ok

name="broker --partitions 1001 is a usage error"
run broker --partitions 1001
expect_usage "--partitions"
ok

name="broker --nodes x is a usage error"
run broker --nodes x
expect_usage "--nodes"
ok

# --brokers is an address list everywhere else: here it is no option.
name="broker --brokers 2 is a usage error (the count is --nodes)"
run broker --brokers 2
expect_usage "--brokers"
ok

name="broker with an unknown option is a usage error"
run broker --bogus
expect_usage "--bogus"
ok

name="broker -t without a name is a usage error"
run broker -t
expect_usage "-t"
ok

name="broker prints its address first and serves topic orders"
start -p 3
[[ "$addr" =~ ^127\.0\.0\.1:[0-9]+$ ]] ||
        fail "expected 127.0.0.1:PORT, got '$addr'"
expect_topic orders 3
ok

name="broker exits 0 on SIGTERM"
stop TERM
ok

name="broker defaults to 4 partitions; --nodes and --topic"
start --nodes 2 --topic other
[[ "$addr" =~ ^127\.0\.0\.1:[0-9]+,127\.0\.0\.1:[0-9]+$ ]] ||
        fail "expected two addresses, got '$addr'"
expect_topic other 4
ok

name="broker carries messages"
echo 'hello' |
        timeout 20 kcat -b "$addr" -P -t other -k o-1 -p 2 2>"$tmp/kerr" ||
        fail "kcat could not produce: $(cat "$tmp/kerr")"
got=$(timeout 20 kcat -b "$addr" -C -t other -p 2 -o beginning -e -q \
        -f '%k %s\n' 2>"$tmp/kerr") ||
        fail "kcat could not consume: $(cat "$tmp/kerr")"
[ "$got" = "o-1 hello" ] || fail "expected 'o-1 hello', got '$got'"
ok

name="broker exits 0 on SIGINT"
stop INT
ok

name="broker runs fault-injection commands from stdin, one reply each"
fresh "$tmp/b.out" "$tmp/b.err"
printf 'rtt 1 20\nerrors Fetch 2 NOT_LEADER_FOR_PARTITION\nbogus\ndown 9\nup all\n' |
        "$of" broker >"$tmp/b.out" 2>"$tmp/b.err" &
pid=$!
pids+=("$pid")
replied() {
        kill -0 "$pid" 2>/dev/null || fail "broker exited at the end of stdin"
        [ -e "$tmp/b.out" ] && [ "$(wc -l <"$tmp/b.out")" -ge 6 ]
}
wait_for 10 "six lines on stdout" replied
[ "$(tail -n +2 "$tmp/b.out" | cut -d: -f1-2)" = "ok rtt 1 20
ok errors Fetch 2 NOT_LEADER_FOR_PARTITION
error: bogus
error: down 9
ok up all" ] || fail "replies: $(cat "$tmp/b.out")"
kill -0 "$pid" 2>/dev/null || fail "broker exited at the end of stdin"
kill -TERM "$pid"
wait "$pid" || fail "expected exit 0 after SIGTERM"
ok
