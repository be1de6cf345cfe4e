# What the real-Kafka cases (tests/kafka/cases/*.sh) share. Sourced after
# tests/lib.sh by a case that has set $of; the case then calls kafka_case.

# kafka_case NAME: a scratch folder for the case ($tmp), its clean-up at
# exit, the group settings the tests use ($fast); on the embedded broker,
# says that NAME is skipped and exits 0; fails without the binary or the
# tools the cases use.
kafka_case() {
        local t
        name=$1
        tmp=$(mktemp -d "${TMPDIR:-/tmp}/orderflow-$1.XXXXXX") || exit 1
        broker_pid=
        relay_args=()
        trap kafka_cleanup EXIT
        trap 'exit 130' INT TERM
        fast=(-X session.timeout.ms=6000 -X heartbeat.interval.ms=500)
        if ! real_kafka; then
                echo "ok - $1 # SKIP: needs real Kafka"
                exit 0
        fi
        [ -x "$of" ] || fail "no binary at $of (run make first)"
        [ -x "$kadmin" ] ||
                fail "no kadmin at $kadmin (make test-kafka builds it)"
        for t in kcat sqlite3 python3; do
                command -v "$t" >/dev/null || fail "$t is needed"
        done
}

# kafka_cleanup: every process the case started in the background is
# SIGKILLed, except the broker: SIGTERM, on which broker.sh stops its JVMs
# and removes its folder; then the scratch folder goes (unless
# OF_TEST_KEEP is set: then its path is said, for a look at a failure).
kafka_cleanup() {
        local rc=$? p
        for p in $(jobs -p); do
                [ "$p" = "$broker_pid" ] || kill -9 "$p" 2>/dev/null
        done
        [ -n "$broker_pid" ] && kill -TERM "$broker_pid" 2>/dev/null
        exec 7>&- 2>/dev/null
        wait 2>/dev/null
        if [ -n "${OF_TEST_KEEP:-}" ] && [ "$rc" -ne 0 ]; then
                echo "# kept $tmp"
        else
                rm -rf "$tmp"
        fi
}

# fail WHY: the verdict, then the last lines (5, or $show) of each of the
# case's logs in $tmp named in $logs.
logs=()
fail() {
        local f
        echo "not ok - $name: $*"
        for f in "${logs[@]}"; do
                [ -s "$tmp/$f" ] &&
                        { echo "# $f:"; tail -"${show:-5}" "$tmp/$f"; }
        done
        exit 1
}

alive() { kill -0 "$1" 2>/dev/null; }

# ok [FIGURES]: the verdict on $name, with what was measured.
ok() { echo "ok - $name${1:+ ($1)}"; }

# The independent model of the outbox (tests/faults/outbox.py): its writer,
# bursts and checks.
outbox=$(dirname "${BASH_SOURCE[0]}")/../faults/outbox.py

# The application database $app: SQL on it, its PENDING and SENT rows.
app_sql() { sq "$app" "$1"; }
pend() { app_sql "SELECT count(*) FROM outbox_messages WHERE status = 'PENDING'"; }
sent() { app_sql "SELECT count(*) FROM outbox_messages WHERE status = 'SENT'"; }

# applied: the offsets the read model $db has applied (the sum over its
# partitions; -1 while it cannot be read).
applied() {
        sq "$db" 'SELECT ifnull(sum(next_offset), 0) FROM partition_offsets' \
                2>/dev/null || echo -1
}

# working S A: the relay ($relay_pid) and the projector ($proj_pid) alive
# (fail otherwise), the relay has sent more than S rows and the projector
# applied more than A offsets.
working() {
        alive "$relay_pid" ||
                fail "the relay exited by itself: $(tail -3 "$tmp/relay.err")"
        alive "$proj_pid" ||
                fail "the projector exited by itself: $(tail -3 "$tmp/proj.err")"
        [ "$(sent)" -gt "$1" ] && [ "$(applied)" -gt "$2" ]
}

# behind: the relay has rows pending and the projector has applied fewer
# offsets than the relay has rows SENT (the topic holds at least that
# many: duplicates only add), by more than 300.
behind() {
        [ "$(pend)" -gt 0 ] && [ $(($(sent) - $(applied))) -gt 300 ]
}

# start_pipeline GROUP: a one-node broker (start_broker_ctl -p 4) that
# answers 100 ms late, so that batches stay in flight and work is in hand
# whatever the machine's speed; the seed order in $app, outbox.py's writer
# (start_writer), a relay ($relay_pid, with
# the options in $relay_args) and a
# projector of GROUP on $db with small fetches (about 200 messages a round
# trip: a burst of orders leaves it seconds behind; $proj_pid); returns
# once both work.
start_pipeline() {
        start_broker_ctl -p 4
        ctl rtt 1 100
        "$of" place --db "$app" --order o-seed --total 1 >/dev/null ||
                fail "could not create $app"
        start_writer "$app" 1
        "$of" relay --db "$app" -b "$addr" "${relay_args[@]}" \
                2>"$tmp/relay.err" &
        relay_pid=$!
        "$of" project --db "$db" -b "$addr" -g "$1" "${fast[@]}" \
                -X max.partition.fetch.bytes=16000 -X fetch.max.bytes=64000 \
                -X message.max.bytes=64000 2>"$tmp/proj.err" &
        proj_pid=$!
        wait_for 120 "the relay and the projector to work" working 100 100
}

# finish_pipeline: once the writer has stopped, the node answering at once
# again: every row SENT (sets rows), every offset up to the high
# watermarks applied (sets high), then relay and projector stop on SIGTERM
# with exit 0.
finish_pipeline() {
        local p pid
        ctl rtt 1 0
        rows=$(app_sql 'SELECT count(*) FROM outbox_messages')
        all_sent() {
                working -1 -1
                why="$(pend) pending"
                [ "$(sent)" -eq "$rows" ]
        }
        wait_for 120 "all $rows rows SENT" all_sent
        high=$(highs) || fail "no watermarks"
        all_applied() {
                working -1 -1
                why="$(applied) applied"
                [ "$(applied)" -eq "$high" ]
        }
        wait_for 120 "the projector to apply $high offsets" all_applied
        for p in relay proj; do
                eval "pid=\$${p}_pid"
                kill -TERM "$pid"
                wait_for 15 "$p to stop on SIGTERM" eval '! alive $pid'
                wait "$pid" ||
                        fail "$p exited $? after SIGTERM: $(tail -3 "$tmp/$p.err")"
        done
}

# watermarks [TOPIC]: "PARTITION LOW HIGH" lines of TOPIC (orders); fails
# when no broker answers.
watermarks() { "$kadmin" -T 20 -b "$addr" watermarks "${1:-orders}"; }

# highs [TOPIC]: the sum of TOPIC's high watermarks.
highs() {
        local w
        w=$(watermarks "$@") || return 1
        echo "$w" | awk '{ s += $3 } END { print s + 0 }'
}

# check_outcome: what the relay put on topic orders and what the projector
# made of it, against the outbox of $app: every event there as stored
# (duplicates allowed), each partition's first copies in commit (seq)
# order except where a row of the order failed and was retried, and the
# read model $db equal to the model computed from the outbox. Sets dups
# (duplicate copies) and late (rows of retried orders behind later ones).
check_outcome() {
        kcat -C -b "$addr" -t orders -e -q -o beginning \
                -f '%p\t%o\t%k\t%s\n' >"$tmp/topic.tsv" 2>"$tmp/kcat.err" ||
                fail "kcat: $(cat "$tmp/kcat.err")"
        dups=$(python3 "$outbox" topic "$app" "$tmp/topic.tsv" \
                2>"$tmp/check.err") ||
                fail "outbox.py topic: $(tail -3 "$tmp/check.err")"
        late=$(python3 "$outbox" order "$app" "$tmp/topic.tsv" \
                2>"$tmp/check.err") ||
                fail "commit order: $(tail -3 "$tmp/check.err")"
        python3 "$outbox" model "$app" "$db" >"$tmp/check.err" 2>&1 ||
                fail "read model differs from the outbox:" \
                        "$(tail -3 "$tmp/check.err")"
}
