#!/usr/bin/env bash
# orderflow broker end to end: usage errors, the address on the first
# line of stdout, the topic as kcat sees it, and a clean exit 0 on
# SIGTERM and SIGINT. Every wait is a bounded poll.
set -u

of=${ORDERFLOW:-build/orderflow}
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

fail() {
        echo "not ok - $name: $*" >&2
        exit 1
}

ok() {
        echo "ok - $name"
}

run() {
        "$of" "$@" >"$tmp/out" 2>"$tmp/err"
        rc=$?
}

expect_usage() {
        [ "$rc" -eq 2 ] || fail "expected exit 2, got $rc"
        [ ! -s "$tmp/out" ] || fail "expected no stdout, got: $(cat "$tmp/out")"
        [ "$(wc -l <"$tmp/err")" -eq 1 ] ||
                fail "expected one stderr line, got: $(cat "$tmp/err")"
        grep -qF -- "$1" "$tmp/err" ||
                fail "expected stderr to name '$1', got: $(cat "$tmp/err")"
}

# Start a broker with the given arguments; sets pid and addr (the first
# line of its stdout, waited for up to 10 s). Output goes to $tmp/b.*;
# an earlier broker's b.out is removed first, or its address could pass for
# this one's (the shell truncates the file only once the child runs).
start_broker() {
        local i
        rm -f "$tmp/b.out" "$tmp/b.err"
        "$of" broker "$@" >"$tmp/b.out" 2>"$tmp/b.err" &
        pid=$!
        pids+=("$pid")
        addr=
        for ((i = 0; i < 100; i++)); do
                if [ -e "$tmp/b.out" ] &&
                        [ "$(wc -l <"$tmp/b.out")" -ge 1 ]; then
                        addr=$(head -n 1 "$tmp/b.out")
                        break
                fi
                kill -0 "$pid" 2>/dev/null ||
                        fail "broker exited early: $(cat "$tmp/b.err")"
                sleep 0.1
        done
        [ -n "$addr" ] || fail "expected an address on stdout within 10 s"
}

# Send signal $1 to the broker and expect exit 0 within 10 s.
stop_broker() {
        local i
        kill "-$1" "$pid" || fail "could not signal the broker"
        for ((i = 0; i < 100; i++)); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
        done
        kill -0 "$pid" 2>/dev/null && fail "expected exit within 10 s of $1"
        wait "$pid"
        rc=$?
        [ "$rc" -eq 0 ] ||
                fail "expected exit 0 after $1, got $rc: $(cat "$tmp/b.err")"
        [ "$(wc -l <"$tmp/b.out")" -eq 1 ] ||
                fail "expected only the address on stdout: $(cat "$tmp/b.out")"
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

name="broker --brokers x is a usage error"
run broker --brokers x
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
start_broker -p 3
[[ "$addr" =~ ^127\.0\.0\.1:[0-9]+$ ]] ||
        fail "expected 127.0.0.1:PORT, got '$addr'"
expect_topic orders 3
ok

name="broker exits 0 on SIGTERM"
stop_broker TERM
ok

name="broker defaults to 4 partitions; --brokers and --topic"
start_broker --brokers 2 --topic other
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
stop_broker INT
ok

name="broker runs fault-injection commands from stdin, one reply each"
rm -f "$tmp/b.out" "$tmp/b.err"
printf 'rtt 1 20\nerrors Fetch 2 NOT_LEADER_FOR_PARTITION\nbogus\ndown 9\nup all\n' |
        "$of" broker >"$tmp/b.out" 2>"$tmp/b.err" &
pid=$!
pids+=("$pid")
for ((i = 0; i < 100; i++)); do
        [ -e "$tmp/b.out" ] && [ "$(wc -l <"$tmp/b.out")" -ge 6 ] && break
        kill -0 "$pid" 2>/dev/null || fail "broker exited at the end of stdin"
        sleep 0.1
done
[ "$(tail -n +2 "$tmp/b.out" | cut -d: -f1-2)" = "ok rtt 1 20
ok errors Fetch 2 NOT_LEADER_FOR_PARTITION
error: bogus
error: down 9
ok up all" ] || fail "replies: $(cat "$tmp/b.out")"
kill -0 "$pid" 2>/dev/null || fail "broker exited at the end of stdin"
kill -TERM "$pid"
wait "$pid" || fail "expected exit 0 after SIGTERM"
ok
