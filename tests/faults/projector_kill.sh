#!/usr/bin/env bash
# The projector killed with SIGKILL at random moments, KILLS times (50)
# during one stream: a third of the kills at any moment of the first 3 s
# (opening the file, WAL recovery, joining the group), the rest within
# 700 ms of getting partitions (applying batches of 1 or 2 messages, so
# most kills land in or between commits). A new group for each run (a
# new group starts nowhere: the read model says where to resume). Then a
# run to the end: the read model must equal gen_stream.py's model, with
# every id once in processed_events and the offsets at the end.
. "$(dirname "$0")/lib.sh"
kills=${KILLS:-50}
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

name="projector SIGKILL at random moments, $kills times"
count() {
        sqlite3 -cmd '.timeout 5000' "$db" \
                'SELECT count(*) FROM processed_events' 2>/dev/null || echo 0
}
prev=0 progressed=0 early=0
for i in $(seq "$kills"); do
        : >"$tmp/proj.err"
        "$of" project --db "$db" -b "$addr" -g "kill-$i" \
                --batch-max $((RANDOM % 2 + 1)) "${fast[@]}" \
                2>"$tmp/proj.err" &
        pid=$!
        pids+=("$pid")
        if [ $((i % 3)) -eq 0 ]; then
                sleep "$((RANDOM % 3)).$((RANDOM % 1000))"
                early=$((early + 1))
        else
                wait_until 30 "run $i to get partitions" \
                        has_line "$tmp/proj.err" assigned
                sleep "0.$((RANDOM % 700))"
        fi
        alive "$pid" || fail "run $i exited by itself: $(tail -3 "$tmp/proj.err")"
        kill -9 "$pid"
        wait "$pid" 2>/dev/null
        n=$(count)
        [ "$n" -gt "$prev" ] && progressed=$((progressed + 1))
        [ "$n" -ge "$prev" ] || fail "run $i: processed_events went from $prev to $n"
        prev=$n
done
figure projector_kills "$kills"
ok "$early early, $progressed with progress, $prev events applied before the last run"

name="projector SIGKILL: a run to the end makes the model exact"
"$of" project --db "$db" -b "$addr" -g final -e -q "${fast[@]}" \
        2>"$tmp/proj.err" || fail "final run exited $?: $(tail -3 "$tmp/proj.err")"
model_exact "$db" "$tmp"
off=$(sqlite3 "$db" 'SELECT sum(next_offset) FROM partition_offsets')
[ "$off" -eq "$total" ] || fail "stored offsets sum to $off, expected $total"
[ "$progressed" -ge $((kills / 3)) ] ||
        fail "only $progressed of $kills runs applied anything: the kills missed the stream"
ok
