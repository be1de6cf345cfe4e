#!/usr/bin/env bash
# Failover: two projectors in one group on one read-model file share the
# topic's partitions; one is killed with SIGKILL while both apply; the
# other must be given the dead one's partitions (after the 6 s session
# timeout) and finish the stream: the read model ends exact.
. "$(dirname "$0")/lib.sh"
db=$tmp/rm.db

start_broker -p 4
python3 "$gen" "${ORDERS:-20000}" 31 "$tmp" || fail "gen_stream.py failed"
publish "$tmp/stream.txt"
total=$(wc -l <"$tmp/stream.txt")

offsets() {
        sqlite3 -cmd '.timeout 5000' "$db" \
                'SELECT ifnull(sum(next_offset), 0) FROM partition_offsets' \
                2>/dev/null || echo -1
}
offsets_are() { [ "$(offsets)" -eq "$1" ]; }
assigned() { grep -o 'assigned orders \[[0-9]*\]' "$1" | sort -u | wc -l; }
both_assigned() {
        [ "$(assigned "$tmp/a.err")" -ge 1 ] && [ "$(assigned "$tmp/b.err")" -ge 1 ]
}
# b_has_all: b's latest assignment lists every partition.
b_got_more() { [ "$(grep -c 'assigned orders' "$tmp/b.err")" -gt "$b_before" ]; }

name="failover: two projectors in one group share the partitions"
for p in a b; do
        "$of" project --db "$db" -b "$addr" -g failover --batch-max 2 \
                "${fast[@]}" 2>"$tmp/$p.err" &
        eval "pid_$p=\$!"
        pids+=("$!")
done
wait_until 40 "both projectors to get partitions" both_assigned
a_parts=$(grep -o 'assigned orders \[[0-9]*\]' "$tmp/a.err" | tr -dc '0-9\n' | sort -u | tr '\n' ' ')
sleep "1.$((RANDOM % 10))" # both applying (batches of 2 take ~10 s)
before=$(offsets)
[ "$before" -lt "$total" ] || fail "the stream was applied before the kill"
ok "a has partitions $a_parts; $before of $total applied"

name="failover: SIGKILL one; the other takes its partitions; model exact"
b_before=$(grep -c 'assigned orders' "$tmp/b.err")
kill -9 "$pid_a"
wait "$pid_a" 2>/dev/null
figure failover_kills 1
wait_until 60 "b to take a's partitions" b_got_more
wait_until 120 "the stream applied by b" offsets_are "$total"
kill -TERM "$pid_b"
wait_until 15 "b to stop on SIGTERM" eval '! alive $pid_b'
wait "$pid_b" || fail "b exited $? after SIGTERM"
model_exact "$db" "$tmp"
ok "b took over after $(grep -c 'assigned orders' "$tmp/b.err") assignment lines"
