#!/usr/bin/env bash
# Failover: two projectors in one group on one read-model file share the
# topic's partitions; one (a) is killed with SIGKILL once it applied
# messages of its own partitions (1 to 200 since it got them, in batches
# of 2). The kill landed mid-work when a's partitions still had offsets to
# apply after it; it must. The other (b) must be given a's partitions
# (after the 6 s session timeout) and finish the stream: the read model
# ends exact.
. "$(dirname "$0")/lib.sh"
db=$tmp/rm.db

start_broker -p 4
python3 "$gen" "${ORDERS:-60000}" 31 "$tmp" || fail "gen_stream.py failed"
publish "$tmp/stream.txt"
total=$(wc -l <"$tmp/stream.txt")

offsets_are() { [ "$(applied_offsets "$db")" -eq "$1" ]; }
assigned() { grep -o 'assigned orders \[[0-9]*\]' "$1" | sort -u | wc -l; }
both_assigned() {
        [ "$(assigned "$tmp/a.err")" -ge 1 ] && [ "$(assigned "$tmp/b.err")" -ge 1 ]
}
b_got_more() { [ "$(grep -c 'assigned orders' "$tmp/b.err")" -gt "$b_before" ]; }
# a_offsets: the offsets applied on a's partitions.
a_offsets() {
        sqlite3 -cmd '.timeout 5000' "$db" \
                "SELECT ifnull(sum(next_offset), 0) FROM partition_offsets
                 WHERE \"partition\" IN ($a_list)" 2>/dev/null || echo -1
}
# a_applied_from N: a is alive and its partitions' offsets reached N.
a_applied_from() {
        alive "$pid_a" || fail "a exited by itself: $(tail -3 "$tmp/a.err")"
        [ "$(a_offsets)" -ge "$1" ]
}

name="failover: two projectors in one group share the partitions"
for p in a b; do
        "$of" project --db "$db" -b "$addr" -g failover --batch-max 2 \
                "${fast[@]}" 2>"$tmp/$p.err" &
        eval "pid_$p=\$!"
        pids+=("$!")
done
wait_for 40 "both projectors to get partitions" both_assigned
a_list=$(grep -o 'assigned orders \[[0-9]*\]' "$tmp/a.err" | tr -dc '0-9\n' |
        sort -un | paste -sd, -)
# Where a's partitions end: the messages of each.
a_end=$(kcat -C -b "$addr" -t orders -o beginning -e -q -f '%p\n' |
        awk -v l=",$a_list," 'index(l, "," $1 ",") { n++ } END { print n + 0 }')
from=$(a_offsets)
echo "# a has partitions $a_list: $from of their $a_end offsets applied when both had partitions" >&2
poll_s=0.02 wait_for 60 "a to apply messages of its partitions" \
        a_applied_from $((from + 1 + RANDOM % 200))
ok "a has partitions $a_list, applying"

name="failover: SIGKILL a mid-work; b takes its partitions; model exact"
b_before=$(grep -c 'assigned orders' "$tmp/b.err")
kill -9 "$pid_a"
wait "$pid_a" 2>/dev/null
left=$((a_end - $(a_offsets)))
landed "failover kills" failover_kills $((left > 0)) 1 1
wait_for 60 "b to take a's partitions" b_got_more
wait_for 120 "the stream applied by b" offsets_are "$total"
kill -TERM "$pid_b"
wait_for 15 "b to stop on SIGTERM" eval '! alive $pid_b'
wait "$pid_b" || fail "b exited $? after SIGTERM"
model_exact "$db" "$tmp"
lines=$(grep -c 'assigned orders' "$tmp/b.err")
ok "killed with $left of a's $a_end offsets left; b took over after $lines\
 assignment lines"
