#!/usr/bin/env bash
# The projector killed with SIGKILL KILLS times (50) during one stream,
# each run in a new group (a new group starts nowhere: the read model says
# where to resume), in batches of 1 or 2 messages so most kills land in or
# between commits. A third of the kills come at a random moment of the
# first 3 s, or as soon as the run got partitions if that is sooner:
# opening the file, WAL recovery, joining the group. The rest wait for the
# run's own progress: the stored offsets grown by 1 to 200 since it
# started. A kill landed mid-work when offsets were left to apply after it;
# at least KILLS_MIN (90%) must land. Then a run to the end: the read
# model must equal gen_stream.py's model, with every id once in
# processed_events and the offsets at the end.
. "$(dirname "$0")/lib.sh"
kills=${KILLS:-50}
min=${KILLS_MIN:-$((kills - kills / 10))}
db=$tmp/rm.db

start_broker -p 8
name="projector SIGKILL: publish the stream"
python3 "$gen" "${ORDERS:-60000}" 11 "$tmp" || fail "gen_stream.py failed"
publish "$tmp/stream.txt"
total=$(wc -l <"$tmp/stream.txt")
# The mock broker drops a partition's oldest messages past a few MiB:
# check that the whole stream is still there from offset 0.
kept=$(kcat -C -b "$addr" -t orders -o beginning -e -q -f 'x\n' | wc -l)
[ "$kept" -eq "$total" ] || fail "the broker kept $kept of $total messages"
ok "$total messages"

name="projector SIGKILL in startup and after progress, $kills times"
count() {
        sqlite3 -cmd '.timeout 5000' "$db" \
                'SELECT count(*) FROM processed_events' 2>/dev/null || echo 0
}
# applied_from N: the run under test is alive and the offsets reached N.
applied_from() {
        alive "$pid" ||
                fail "run $i exited by itself: $(tail -3 "$tmp/proj.err")"
        [ "$(applied_offsets "$db")" -ge "$1" ]
}
# early_moment DEADLINE: past DEADLINE (ms), or the run got partitions.
early_moment() {
        [ "$(now_ms)" -ge "$1" ] || has_line "$tmp/proj.err" assigned
}
prev=0 early=0 hit=0
for i in $(seq "$kills"); do
        : >"$tmp/proj.err"
        from=$(applied_offsets "$db")
        "$of" project --db "$db" -b "$addr" -g "kill-$i" \
                --batch-max $((RANDOM % 2 + 1)) "${fast[@]}" \
                2>"$tmp/proj.err" &
        pid=$!
        pids+=("$pid")
        if [ $((i % 3)) -eq 0 ]; then
                poll_s=0.02 wait_for 10 "run $i's early moment" \
                        early_moment $(($(now_ms) + RANDOM % 3000))
        else
                wait_for 30 "run $i to get partitions" \
                        has_line "$tmp/proj.err" assigned
                poll_s=0.02 wait_for 60 "run $i to apply messages" \
                        applied_from $((from + 1 + RANDOM % 200))
        fi
        alive "$pid" || fail "run $i exited by itself: $(tail -3 "$tmp/proj.err")"
        kill -9 "$pid"
        wait "$pid" 2>/dev/null
        off=$(applied_offsets "$db")
        if [ "$off" -lt "$total" ]; then
                hit=$((hit + 1))
                [ "$off" -eq "$from" ] && early=$((early + 1))
        fi
        n=$(count)
        [ "$n" -ge "$prev" ] ||
                fail "run $i: processed_events went from $prev to $n"
        prev=$n
done
landed "projector kills" projector_kills "$hit" "$kills" "$min"
ok "$hit of $kills mid-work (at least $min promised): $early before\
 applying anything, $((hit - early)) mid-apply; $prev events applied before\
 the last run"

name="projector SIGKILL: a run to the end makes the model exact"
"$of" project --db "$db" -b "$addr" -g final -e -q "${fast[@]}" \
        2>"$tmp/proj.err" || fail "final run exited $?: $(tail -3 "$tmp/proj.err")"
model_exact "$db" "$tmp"
off=$(applied_offsets "$db")
[ "$off" -eq "$total" ] || fail "stored offsets sum to $off, expected $total"
ok
