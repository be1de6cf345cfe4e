#!/usr/bin/env bash
# Rebuilds in the middle of chaos, ROUNDS (10) rounds after the first half
# of the stream: each round publishes a tenth of the second half, SIGKILLs
# the running projector once it applied part of it (the next one resumes
# from the file, in a new group), then starts a new projector and a
# rebuild side by side. The odd rounds' rebuilds (but the last round's)
# are SIGKILLed on one of their progress lines (10% to 50%), mid-replay;
# the others run to the swap, which the joining projector notices. A
# reader checks the file every 20 ms all along. A kill landed mid-work when
# the work was not done after it: a rebuild without its 100% line, a
# projector with offsets left to apply. At least 4 of 5 rebuild kills and
# 90% of the projector kills must land. Every read must be error-free and
# consistent, a killed rebuild must leave the live file's generation as it
# was and the last one no file beside it; then a run to the end must make
# the model exactly gen_stream.py's, every id once.
. "$(dirname "$0")/lib.sh"
rounds=${ROUNDS:-10}
mkdir "$tmp/rm" || fail "mkdir"
db=$tmp/rm/rm.db
mkfifo "$tmp/rb.fifo" || fail "mkfifo"

start_broker -p 8
name="rebuild chaos: the first half of the stream"
python3 "$gen" "${ORDERS:-30000}" 13 "$tmp" || fail "gen_stream.py failed"
total=$(wc -l <"$tmp/stream.txt")
half=$((total / 2))
head -n "$half" "$tmp/stream.txt" >"$tmp/part1.txt"
tail -n +"$((half + 1))" "$tmp/stream.txt" >"$tmp/part2.txt"
split -n l/"$rounds" -d -a 3 "$tmp/part2.txt" "$tmp/chunk."
publish "$tmp/part1.txt"
published=$half
"$of" project --db "$db" -b "$addr" -g first -e -q "${fast[@]}" \
        2>"$tmp/proj.err" || fail "project -e exited $?"
ok "$half messages"

name="rebuild chaos: $rounds rounds of a rebuild, a projector kill, a reader"
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
generation() {
        sqlite3 -cmd '.timeout 5000' "$db" 'SELECT generation FROM store_info'
}
# start_projector I: a projector on the file in group chaos-I, batches of
# 1 to 20 messages; sets proj.
start_projector() {
        "$of" project --db "$db" -b "$addr" -g "chaos-$1" \
                --batch-max $((RANDOM % 20 + 1)) "${fast[@]}" \
                2>"$tmp/proj-$1.err" &
        proj=$!
        pids+=("$proj")
}
# applied_from N: the projector under test (the last round's) is alive
# and the file's offsets reached N.
applied_from() {
        alive "$proj" || fail "projector $((i - 1)) exited by itself:" \
                "$(tail -3 "$tmp/proj-$((i - 1)).err")"
        [ "$(applied_offsets "$db")" -ge "$1" ]
}
# rebuild_round KILL: a rebuild with its stderr read line by line; with
# KILL, SIGKILLed on its first progress line at or past a random tenth
# from 10% to 50%. Sets rc.
rebuild_round() {
        local target=$((10 * (RANDOM % 5 + 1))) line pct
        "$of" rebuild --db "$db" -b "$addr" --batch-max 200 \
                >"$tmp/rb.out" 2>"$tmp/rb.fifo" &
        rb=$!
        pids+=("$rb")
        : >"$tmp/rb.err"
        while IFS= read -r line; do
                echo "$line" >>"$tmp/rb.err"
                case ${1:-}$line in
                kill*" events ("*"%)"*)
                        pct=${line#* events (}
                        pct=${pct%%%*}
                        if [ "$pct" -ge "$target" ] && [ "$pct" -lt 100 ]; then
                                kill -9 "$rb"
                                break
                        fi
                        ;;
                esac
        done <"$tmp/rb.fifo"
        { wait "$rb"; } 2>/dev/null
        rc=$?
}
i=0
start_projector 0
wait_for 30 "projector 0 to get partitions" \
        has_line "$tmp/proj-0.err" assigned
rb_hit=0 proj_hit=0 swaps_done=0
for chunk in "$tmp"/chunk.*; do
        i=$((i + 1))
        from=$(applied_offsets "$db")
        publish "$chunk"
        n=$(wc -l <"$chunk")
        published=$((published + n))
        poll_s=0.02 wait_for 60 "projector $((i - 1)) to apply chunk $i" \
                applied_from $((from + 1 + RANDOM % (n / 8 + 1)))
        kill -9 "$proj"
        wait "$proj" 2>/dev/null
        [ "$(applied_offsets "$db")" -lt "$published" ] &&
                proj_hit=$((proj_hit + 1))
        gen_before=$(generation)
        start_projector "$i"
        if [ $((i % 2)) -eq 1 ] && [ "$i" -lt "$rounds" ]; then
                rebuild_round kill
                case $rc in
                137) ;;
                0) swaps_done=$((swaps_done + 1)) ;;
                *) fail "rebuild $i exited $rc: $(tail -2 "$tmp/rb.err")" ;;
                esac
                if [ "$rc" -eq 137 ] &&
                        ! grep -q ' events (100%)' "$tmp/rb.err"; then
                        [ "$(generation)" = "$gen_before" ] ||
                                fail "rebuild $i changed the file mid-replay"
                        rb_hit=$((rb_hit + 1))
                fi
        else
                rebuild_round
                [ "$rc" -eq 0 ] ||
                        fail "rebuild $i exited $rc: $(tail -2 "$tmp/rb.err")"
                [ "$(generation)" != "$gen_before" ] ||
                        fail "rebuild $i did not swap a new model in"
                swaps_done=$((swaps_done + 1))
        fi
        wait_for 30 "projector $i to get partitions" \
                has_line "$tmp/proj-$i.err" assigned
done
kill -TERM "$proj"
wait_for 15 "the last projector to stop on SIGTERM" eval '! alive $proj'
wait "$proj" || fail "the last projector exited $? after SIGTERM"
swaps=$(cat "$tmp"/proj-*.err | grep -c 'the read model was replaced')
[ "$swaps" -ge 1 ] || fail "no projector ever saw a swap"
left=$(find "$tmp/rm" -type f ! -empty ! -name rm.db ! -name rm.db-wal \
        ! -name rm.db-shm)
[ -z "$left" ] || fail "the last rebuild left files beside the live one: $left"
grep -v '^1$' "$tmp/reads" | head -3 >"$tmp/bad"
[ -s "$tmp/bad" ] && fail "a reader saw: $(cat "$tmp/bad")"
reads=$(wc -l <"$tmp/reads")
odd=$((rounds / 2)) min_rb=$((rounds / 2 - 1))
min_proj=$((rounds - rounds / 10))
landed "rebuild kills" rebuild_kills "$rb_hit" "$odd" "$min_rb"
landed "projector kills" projector_kills "$proj_hit" "$rounds" "$min_proj"
ok "rebuilds: $rb_hit of $odd killed mid-replay (at least $min_rb\
 promised), $swaps_done swapped ($swaps seen by a running projector);\
 projectors: $proj_hit of $rounds killed mid-apply (at least $min_proj\
 promised); $reads reads all consistent"

name="rebuild chaos: a run to the end makes the model exact"
"$of" project --db "$db" -b "$addr" -g final -e -q "${fast[@]}" \
        2>"$tmp/proj.err" || fail "final run exited $?: $(tail -3 "$tmp/proj.err")"
model_exact "$db" "$tmp"
off=$(applied_offsets "$db")
[ "$off" -eq "$total" ] || fail "stored offsets sum to $off, expected $total"
ok
