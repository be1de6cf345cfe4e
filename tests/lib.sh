# Sourced by the shell tests and the benchmark. Expects $of (the binary)
# and $tmp (a scratch directory).

# A test's verdict on the check called $name ("ok - ..." / "not ok - ...";
# a script may define its own fail after sourcing this).
fail() {
        echo "not ok - $name: $*" >&2
        exit 1
}
ok() { echo "ok - $name"; }

# run ARGS...: the binary with ARGS; its exit code in rc, its output in
# $tmp/out and $tmp/err.
run() {
        "$of" "$@" >"$tmp/out" 2>"$tmp/err"
        rc=$?
}

expect_rc() {
        [ "$rc" -eq "$1" ] ||
                fail "expected exit $1, got $rc; stderr: $(cat "$tmp/err")"
}

# expect_usage TEXT: a usage error: exit 2, nothing on stdout, one stderr
# line containing TEXT.
expect_usage() {
        expect_rc 2
        [ ! -s "$tmp/out" ] ||
                fail "expected no stdout, got: $(cat "$tmp/out")"
        [ "$(wc -l <"$tmp/err")" -eq 1 ] ||
                fail "expected one stderr line, got: $(cat "$tmp/err")"
        grep -qF -- "$1" "$tmp/err" ||
                fail "expected stderr to name '$1', got: $(cat "$tmp/err")"
}

# expect_failure LINE: a runtime failure: exit 1, nothing on stdout,
# stderr exactly LINE.
expect_failure() {
        expect_rc 1
        [ ! -s "$tmp/out" ] ||
                fail "expected no stdout, got: $(cat "$tmp/out")"
        [ "$(cat "$tmp/err")" = "$1" ] ||
                fail "expected stderr '$1', got: $(cat "$tmp/err")"
}

# expect_ok_out LINE: success: exit 0, no stderr, stdout exactly LINE.
expect_ok_out() {
        expect_rc 0
        [ ! -s "$tmp/err" ] ||
                fail "expected no stderr, got: $(cat "$tmp/err")"
        [ "$(cat "$tmp/out")" = "$1" ] ||
                fail "expected stdout '$1', got: $(cat "$tmp/out")"
}

# expect_out: stdout equals $tmp/expected.
expect_out() {
        diff -u "$tmp/expected" "$tmp/out" >&2 ||
                fail "stdout is not the expected one (diff above: - expected)"
}

# The broker the tests run on: the embedded one (`orderflow broker`) unless
# OF_TEST_BROKER names a command with its interface (tests/kafka/broker.sh:
# real Apache Kafka, `make test-kafka`). Same options (-t, -p, --nodes),
# the address as the first line on stdout, fault commands on stdin.
# set_broker_cmd sets broker_cmd to that command (a simple command, so that
# "${broker_cmd[@]}" ... & gives its own pid in $!, which a kill reaches).
set_broker_cmd() {
        if [ -n "${OF_TEST_BROKER:-}" ]; then
                # Its folder in the test's: gone with it, whatever happens.
                broker_cmd=(env "TMPDIR=$tmp" "$OF_TEST_BROKER")
        else
                broker_cmd=("$of" broker)
        fi
}

# The test tool for real Kafka's admin requests (tests/kafka/kadmin.c).
kadmin=${KADMIN:-$(dirname "$of")/tests/kafka/kadmin}

# real_kafka: the tests run on real Kafka, not on the embedded broker.
real_kafka() { [ -n "${OF_TEST_BROKER:-}" ]; }

# Seconds a broker may take to print its address (a real cluster starts
# JVMs and creates its topic first).
broker_wait=${OF_TEST_BROKER_WAIT:-10}

# embedded_only WHAT: true on the embedded broker; on real Kafka, says that
# WHAT (a check that needs the embedded broker's fault commands) is skipped
# and returns 1.
embedded_only() {
        real_kafka || return 0
        echo "ok - $1 # SKIP: needs the embedded broker's fault commands"
        return 1
}

# fresh FILE...: remove what an earlier process wrote to FILEs before a
# background one writes them: the shell truncates a redirection only once
# the child runs, so a wait for a line in them could see the earlier
# process's line first.
fresh() { rm -f "$@"; }

# start_broker ARGS...: the broker with ARGS in the background; sets broker_pid,
# and addr to its first line of output (its address). Returns 1 when none
# came within $broker_wait s.
start_broker() {
        local i
        fresh "$tmp/broker.out" "$tmp/broker.err"
        set_broker_cmd
        "${broker_cmd[@]}" "$@" >"$tmp/broker.out" 2>"$tmp/broker.err" &
        broker_pid=$!
        for i in $(seq $((broker_wait * 10))); do
                [ -s "$tmp/broker.out" ] && break
                kill -0 "$broker_pid" 2>/dev/null || break
                sleep 0.1
        done
        addr=$(head -1 "$tmp/broker.out")
        [ -n "$addr" ] && return 0
        echo "# the broker: $(tail -2 "$tmp/broker.err")" >&2
        return 1
}

# start_writer APP FIRST: tests/faults/outbox.py's writer, placing orders
# o-FIRST ... and paying the even ones into APP every few ms until
# stop_writer, which sets written (the rows it committed).
start_writer() {
        rm -f "$tmp/writer.stop"
        python3 "$(dirname "${BASH_SOURCE[0]}")/faults/outbox.py" write \
                "$1" "$2" "$tmp/writer.stop" \
                >"$tmp/writer.out" 2>"$tmp/writer.err" &
        writer_pid=$!
        pids+=("$writer_pid")
}
stop_writer() {
        touch "$tmp/writer.stop"
        wait "$writer_pid" ||
                fail "the writer exited $?: $(tail -2 "$tmp/writer.err")"
        written=$(cat "$tmp/writer.out")
}

# sq ARGS...: sqlite3 that waits for locks, as readers should (docs/reference.md).
sq() { sqlite3 -cmd '.timeout 5000' "$@"; }

# has_line FILE PATTERN: FILE is not empty and has a line matching it.
has_line() { [ -s "$1" ] && grep -q -- "$2" "$1"; }

# wait_for SECONDS WHAT COMMAND...: run COMMAND every $poll_s seconds (0.05
# unless set) until it succeeds; fail naming WHAT (and $why, when COMMAND
# sets it to what it last saw) after SECONDS by the clock (a COMMAND that
# takes a while itself must not stretch the limit).
wait_for() {
        local limit=$1 what=$2 end
        end=$(($(date +%s%N) + $1 * 1000000000))
        shift 2
        why=
        until "$@"; do
                [ "$(date +%s%N)" -lt "$end" ] ||
                        fail "timed out after $limit s waiting for $what${why:+ ($why)}"
                sleep "${poll_s:-0.05}"
        done
}

# broker_ready: the broker has printed its address; fails the test when
# it has exited instead.
broker_ready() {
        [ -s "$tmp/broker.out" ] && return 0
        kill -0 "$broker_pid" 2>/dev/null ||
                fail "the broker exited: $(tail -2 "$tmp/broker.err")"
        return 1
}

# start_broker_ctl ARGS...: like start_broker (a broker already started
# this way is stopped first: a new cluster, every topic new), with fault
# commands (`orderflow broker --help`) going to it through fd 7; see ctl.
start_broker_ctl() {
        if [ -n "${broker_pid:-}" ]; then
                kill "$broker_pid"
                wait "$broker_pid" 2>/dev/null
                exec 7>&-
        fi
        fresh "$tmp/broker.ctl" "$tmp/broker.out" "$tmp/broker.err"
        mkfifo "$tmp/broker.ctl" || fail "mkfifo"
        exec 7<>"$tmp/broker.ctl"
        set_broker_cmd
        "${broker_cmd[@]}" "$@" <&7 >"$tmp/broker.out" 2>"$tmp/broker.err" &
        broker_pid=$!
        wait_for "$broker_wait" "the broker's address" broker_ready
        addr=$(head -1 "$tmp/broker.out")
        ctl_replies=1
}

# ctl COMMAND: one fault command to the broker; fail unless it answers
# "ok COMMAND".
ctl() {
        echo "$*" >&7
        ctl_replies=$((ctl_replies + 1))
        # (a real node's `start` answers once it serves)
        wait_for $((broker_wait > 10 ? broker_wait : 10)) \
                "the broker's reply to '$*'" \
                eval '[ "$(wc -l <"$tmp/broker.out")" -ge $ctl_replies ]'
        [ "$(sed -n "${ctl_replies}p" "$tmp/broker.out")" = "ok $*" ] ||
                fail "broker: $(sed -n "${ctl_replies}p" "$tmp/broker.out")"
}
