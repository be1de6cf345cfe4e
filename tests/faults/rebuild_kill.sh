#!/usr/bin/env bash
# Rebuilds in the middle of chaos: REBUILDS (10) rebuilds one after another,
# every other one SIGKILLed at a random moment of its replay, while a
# projector on the same file is SIGKILLed at random moments and restarted
# (a new group each time: the file says where to resume), the second half
# of the stream is published, and a reader checks the file every 20 ms.
# Every read must be error-free and consistent; a killed rebuild must
# leave the live file to the projector; afterwards a run to the end must
# make the model exactly gen_stream.py's, every id once.
. "$(dirname "$0")/lib.sh"
rebuilds=${REBUILDS:-10}
db=$tmp/rm.db

start_broker -p 8
name="rebuild chaos: the first half of the stream"
python3 "$gen" "${ORDERS:-30000}" 13 "$tmp" || fail "gen_stream.py failed"
total=$(wc -l <"$tmp/stream.txt")
half=$((total / 2))
head -n "$half" "$tmp/stream.txt" >"$tmp/part1.txt"
tail -n +"$((half + 1))" "$tmp/stream.txt" >"$tmp/part2.txt"
publish "$tmp/part1.txt"
"$of" project --db "$db" -b "$addr" -g first -e -q "${fast[@]}" \
        2>"$tmp/proj.err" || fail "project -e exited $?"
ok "$half messages"

name="rebuild chaos: $rebuilds rebuilds, projector kills, a reader"
probe="SELECT ((SELECT orders_placed FROM order_totals) =
        (SELECT count(placed_at) FROM order_list)
    AND (SELECT placed_amount FROM order_totals) =
        (SELECT ifnull(sum(total), 0) FROM order_list)
    AND (SELECT paid_amount FROM order_totals) =
        (SELECT ifnull(sum(paid_amount), 0) FROM order_list))"
(
        while :; do
                r=$(sqlite3 -cmd ".timeout 5000" "$db" "$probe" 2>&1)
                echo "$r" >>"$tmp/reads"
                sleep 0.02
        done
) &
pids+=($!)
# The projector, killed and restarted until the file is left alone.
(
        i=0
        while [ ! -e "$tmp/stop" ]; do
                i=$((i + 1))
                "$of" project --db "$db" -b "$addr" -g "chaos-$i" \
                        --batch-max $((RANDOM % 500 + 1)) "${fast[@]}" \
                        2>>"$tmp/chaos.err" &
                p=$!
                sleep "$((RANDOM % 2)).$((RANDOM % 1000))"
                kill -9 "$p" 2>/dev/null
                wait "$p" 2>/dev/null
                echo "$i" >"$tmp/proj.kills"
        done
) &
chaos_pid=$!
pids+=("$chaos_pid")
killed=0 done_ok=0
for i in $(seq "$rebuilds"); do
        [ "$i" -eq 2 ] && publish "$tmp/part2.txt"
        "$of" rebuild --db "$db" -b "$addr" --batch-max 200 -q \
                >"$tmp/rb.out" 2>"$tmp/rb.err" &
        rb=$!
        pids+=("$rb")
        if [ $((i % 2)) -eq 0 ] && [ "$i" -lt "$rebuilds" ]; then
                sleep "0.$((RANDOM % 800))"
                if alive "$rb"; then
                        kill -9 "$rb"
                        killed=$((killed + 1))
                fi
        fi
        { wait "$rb"; } 2>/dev/null
        rc=$?
        case $rc in
        0) done_ok=$((done_ok + 1)) ;;
        137) ;;
        *) fail "rebuild $i exited $rc: $(tail -2 "$tmp/rb.err")" ;;
        esac
done
touch "$tmp/stop"
wait "$chaos_pid"
kills=$(cat "$tmp/proj.kills" 2>/dev/null || echo 0)
swaps=$(grep -c 'the read model was replaced' "$tmp/chaos.err")
[ "$swaps" -ge 1 ] || fail "no projector ever saw a swap"
[ -e "$db.rebuild" ] && fail "the last rebuild left its new file"
[ "$done_ok" -ge $((rebuilds / 2)) ] ||
        fail "only $done_ok rebuilds completed"
grep -v '^1$' "$tmp/reads" | head -3 >"$tmp/bad"
[ -s "$tmp/bad" ] && fail "a reader saw: $(cat "$tmp/bad")"
reads=$(wc -l <"$tmp/reads")
figure projector_kills "$kills"
figure rebuild_kills "$killed"
ok "$done_ok rebuilds swapped ($swaps seen by a running projector), $killed killed, $kills projector SIGKILLs, $reads reads all consistent"

name="rebuild chaos: a run to the end makes the model exact"
"$of" project --db "$db" -b "$addr" -g final -e -q "${fast[@]}" \
        2>"$tmp/proj.err" || fail "final run exited $?: $(tail -3 "$tmp/proj.err")"
model_exact "$db" "$tmp"
off=$(sqlite3 "$db" 'SELECT sum(next_offset) FROM partition_offsets')
[ "$off" -eq "$total" ] || fail "stored offsets sum to $off, expected $total"
ok
