# Helpers shared by the fault scenarios (sourced, not run): a temp dir and
# every started process cleaned up on exit, "ok -"/"not ok -" lines,
# bounded waits, the embedded broker with its fault-injection stdin, a
# writer that keeps placing orders, and figures (faults sent, faults that
# landed mid-work) appended to $TEST_FIGURES for tests/run.sh.
set -u

of=${ORDERFLOW:-build/orderflow}
faults_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# wait_for and sq; what is defined below replaces the rest.
. "$faults_dir/../lib.sh"
gen=$faults_dir/../cli/gen_stream.py
tmp=$(mktemp -d "${TMPDIR:-/tmp}/orderflow-faults.XXXXXX") || exit 1
pids=()
name=setup
# A dead projector's group would hold its partitions for the default 45 s.
fast=(-X session.timeout.ms=6000 -X heartbeat.interval.ms=500)

cleanup() {
        local p
        for p in "${pids[@]}"; do
                kill -9 "$p" 2>/dev/null
        done
        exec 7>&- 2>/dev/null
        wait 2>/dev/null
        rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
        echo "not ok - $name: $*"
        exit 1
}
ok() { echo "ok - $name${1:+ ($1)}"; }

# figure KEY N: add N to a figure of the summary (kills, faults ...).
figure() {
        [ -n "${TEST_FIGURES:-}" ] && echo "$1 $2" >>"$TEST_FIGURES"
        return 0
}

# landed WHAT KEY LANDED SENT MIN: add SENT to the figure KEY and LANDED
# to KEY_landed (the faults that arrived while the work was going on);
# fail when fewer than MIN landed: the faults missed the work.
landed() {
        figure "$2" "$4"
        figure "$2_landed" "$3"
        [ "$3" -ge "$5" ] || fail "only $3 of $4 $1 landed mid-work" \
                "(at least $5 promised): the faults missed the work"
}


now_ms() { date +%s%3N; }

alive() { kill -0 "$1" 2>/dev/null; }
lines_at_least() { [ -e "$1" ] && [ "$(wc -l <"$1")" -ge "$2" ]; }

# start_broker ARGS...: `orderflow broker ARGS` reading commands from the
# fifo held open on fd 7; sets broker_pid and addr.
start_broker() {
        mkfifo "$tmp/broker.ctl" || fail "mkfifo"
        exec 7<>"$tmp/broker.ctl"
        "$of" broker "$@" <&7 >"$tmp/broker.out" 2>"$tmp/broker.err" &
        broker_pid=$!
        pids+=("$broker_pid")
        wait_for 10 "the broker's address" lines_at_least "$tmp/broker.out" 1
        addr=$(head -1 "$tmp/broker.out")
        ctl_replies=1
}

# ctl COMMAND: send one fault-injection command, wait for "ok COMMAND".
ctl() {
        echo "$*" >&7
        ctl_replies=$((ctl_replies + 1))
        wait_for 10 "the broker's reply to '$*'" \
                lines_at_least "$tmp/broker.out" "$ctl_replies"
        [ "$(sed -n "${ctl_replies}p" "$tmp/broker.out")" = "ok $*" ] ||
                fail "broker: $(sed -n "${ctl_replies}p" "$tmp/broker.out")"
}

# applied_offsets DB: how many offsets the read model DB has applied
# (the sum over its partitions; -1 when it cannot be read).
applied_offsets() {
        sqlite3 -cmd '.timeout 5000' "$1" \
                'SELECT ifnull(sum(next_offset), 0) FROM partition_offsets' \
                2>/dev/null || echo -1
}

# publish FILE: key|value lines onto topic orders with kcat.
publish() {
        kcat -P -b "$addr" -t orders -K '|' -l "$1" 2>"$tmp/kcat.err" ||
                fail "kcat could not publish: $(tail -2 "$tmp/kcat.err")"
}

# model_exact DB DIR: the read model equals gen_stream.py's model, and no
# event was applied twice (processed_events holds distinct ids only, and
# totals equal sums over order_list).
model_exact() {
        local db=$1 dir=$2 r
        if ! python3 "$gen" check "$db" "$dir" >"$tmp/check.err" 2>&1; then
                # FAULTS_KEEP=DIR keeps the evidence of a failure.
                [ -n "${FAULTS_KEEP:-}" ] && mkdir -p "$FAULTS_KEEP" &&
                        cp -r "$tmp"/. "$FAULTS_KEEP"/
                fail "read model differs from the model: $(head -20 "$tmp/check.err")"
        fi
        r=$(sqlite3 -cmd '.timeout 5000' "$db" \
            "SELECT (SELECT count(*) FROM processed_events) =
                    (SELECT count(DISTINCT event_id) FROM processed_events)
                AND (SELECT orders_placed FROM order_totals) =
                    (SELECT count(placed_at) FROM order_list)
                AND (SELECT placed_amount FROM order_totals) =
                    (SELECT ifnull(sum(total), 0) FROM order_list)
                AND (SELECT paid_amount FROM order_totals) =
                    (SELECT ifnull(sum(paid_amount), 0) FROM order_list)
                AND (SELECT orders_paid FROM order_totals) =
                    (SELECT count(paid_at) FROM order_list)")
        [ "$r" = 1 ] || fail "processed_events or totals disagree ($r)"
}

[ -x "$of" ] || fail "no binary at $of (run make first)"
for t in kcat sqlite3 python3; do
        command -v "$t" >/dev/null || fail "$t is needed"
done
