# Sourced by the shell tests and the benchmark. Expects $of (the binary)
# and $tmp (a scratch directory).

# A test's verdict on the check called $name ("ok - ..." / "not ok - ...";
# a script may define its own fail after sourcing this).
fail() {
        echo "not ok - $name: $*" >&2
        exit 1
}
ok() { echo "ok - $name"; }

# start_broker ARGS...: `orderflow broker ARGS` in the background; sets
# broker_pid, and addr to its first line of output (its address). Returns 1
# when none came within 10 s.
start_broker() {
        local i
        "$of" broker "$@" >"$tmp/broker.out" 2>"$tmp/broker.err" &
        broker_pid=$!
        for i in $(seq 100); do
                [ -s "$tmp/broker.out" ] && break
                sleep 0.1
        done
        addr=$(head -1 "$tmp/broker.out")
        [ -n "$addr" ]
}
