# Sourced by the shell tests and the benchmark. Expects $of (the binary)
# and $tmp (a scratch directory).

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
