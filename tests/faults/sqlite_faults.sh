#!/usr/bin/env bash
# SQLite faults under a running projector: another process holding the
# write lock for seconds (the projector waits, logs, goes on); the disk
# full, simulated with a file-size limit (ulimit -f, SIGXFSZ ignored: the
# WAL cannot grow, SQLite reports an I/O error) lifted with prlimit once
# the projector has retried (it stops applying, says why, skips nothing);
# a read-only file and a corrupt file (one clear line, exit 1). The stream
# is published in three parts; the read model must end exact.
. "$(dirname "$0")/lib.sh"
db=$tmp/rm.db
ro_mnt=

start_broker -p 4
python3 "$gen" 3000 23 "$tmp" || fail "gen_stream.py failed"
total=$(wc -l <"$tmp/stream.txt")
split -n l/3 -d "$tmp/stream.txt" "$tmp/part"
n_a=$(wc -l <"$tmp/part00")
n_b=$((n_a + $(wc -l <"$tmp/part01")))

offsets() {
        sqlite3 -cmd '.timeout 5000' "$db" \
                'SELECT ifnull(sum(next_offset), 0) FROM partition_offsets' \
                2>/dev/null || echo -1
}
offsets_are() { [ "$(offsets)" -eq "$1" ]; }
retries_at_least() { [ "$(grep -c 'retrying' "$1")" -ge "$2" ]; }

# start_projector ERRFILE: a long-running projector; sets pid.
start_projector() {
        "$of" project --db "$db" -b "$addr" -g "$1" --batch-max 20 \
                "${fast[@]}" 2>"$tmp/$1.err" &
        pid=$!
        pids+=("$pid")
}
stop_projector() {
        kill -TERM "$pid"
        wait_until 15 "the projector to stop on SIGTERM" eval '! alive $pid'
        wait "$pid"
        local rc=$?
        [ "$rc" -eq 0 ] || fail "exit $rc after SIGTERM: $(tail -3 "$tmp/$1.err")"
}

name="SQLite: write lock held 4 s by another process"
publish "$tmp/part00"
start_projector lock
wait_until 30 "part 1 applied" offsets_are "$n_a"
coproc LOCK { python3 -c '
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
c.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
c.execute("ROLLBACK")
' "$db"; }
pids+=("$LOCK_PID")
read -r -t 10 line <&"${LOCK[0]}" && [ "$line" = locked ] ||
        fail "the lock holder did not get the lock"
publish "$tmp/part01"
wait_until 30 "the projector to log that it waits" \
        has_line "$tmp/lock.err" 'retrying'
sleep 4 # the fault's length, not a wait for a result
[ "$(offsets)" -eq "$n_a" ] || fail "applied while the lock was held"
echo release >&"${LOCK[1]}"
wait "$LOCK_PID" || fail "the lock holder failed"
wait_until 30 "part 2 applied after the lock went" offsets_are "$n_b"
figure sqlite_faults 1
ok "$(grep -c retrying "$tmp/lock.err") retries logged: $(grep -m1 retrying "$tmp/lock.err" | cut -c26-)"
stop_projector lock

name="SQLite: disk full (file size limit) stops applying, then resumes"
# ulimit -f counts 1 KiB blocks: the WAL may grow by about 1 MiB.
(trap '' XFSZ; ulimit -S -f $(($(stat -c %s "$db") / 1024 + 1024)) &&
        exec "$of" project --db "$db" -b "$addr" -g full --batch-max 5 \
                "${fast[@]}" 2>"$tmp/full.err") &
pid=$!
pids+=("$pid")
publish "$tmp/part02"
reported() {
        alive "$pid" || fail "the projector exited: $(tail -2 "$tmp/full.err")"
        has_line "$tmp/full.err" retrying
}
wait_until 60 "the projector to report the full disk" reported
wait_until 30 "three retries" retries_at_least "$tmp/full.err" 3
stuck=$(offsets)
[ "$stuck" -lt "$total" ] || fail "everything applied despite the limit"
sleep 1
[ "$(offsets)" -eq "$stuck" ] || fail "applied while the disk was full"
prlimit --pid "$pid" --fsize=unlimited:unlimited || fail "prlimit failed"
wait_until 60 "the rest applied once space came back" offsets_are "$total"
stop_projector full
model_exact "$db" "$tmp"
figure sqlite_faults 1
ok "stuck at $stuck of $total; said: $(grep -m1 retrying "$tmp/full.err" | cut -c26-)"

# one_line_exit1 ERRFILE RC WHAT: exit 1 and one stderr line.
one_line_exit1() {
        [ "$2" -eq 1 ] || fail "$3: expected exit 1, got $2: $(cat "$1")"
        [ "$(wc -l <"$1")" -eq 1 ] || fail "$3: expected one line, got: $(cat "$1")"
}

name="SQLite: a corrupt file is one line and exit 1"
cp "$db" "$tmp/corrupt.db"
# Garbage over every page but the first (the header and schema survive).
size=$(stat -c %s "$tmp/corrupt.db")
python3 -c '
import sys
f = open(sys.argv[1], "r+b"); n = int(sys.argv[2])
f.seek(4096); f.write(bytes((i * 7 + 13) % 256 for i in range(n - 4096)))
' "$tmp/corrupt.db" "$size"
timeout 30 "$of" project --db "$tmp/corrupt.db" -b "$addr" -g corrupt -e -q \
        "${fast[@]}" 2>"$tmp/corrupt.err"
one_line_exit1 "$tmp/corrupt.err" $? "corrupt pages"
echo "not a database, just some text long enough to fill a header. ....." \
        >"$tmp/text.db"
timeout 30 "$of" project --db "$tmp/text.db" -b "$addr" -g corrupt -e -q \
        "${fast[@]}" 2>"$tmp/text.err"
one_line_exit1 "$tmp/text.err" $? "a text file"
grep -q 'text.db' "$tmp/text.err" || fail "the error does not name the file"
figure sqlite_faults 2
ok "$(cat "$tmp/corrupt.err")"

name="SQLite: a read-only file is one line and exit 1"
if [ "$(id -u)" -ne 0 ]; then
        cp "$db" "$tmp/ro.db" && chmod 444 "$tmp/ro.db"
        ro=$tmp/ro.db
elif mkdir "$tmp/rofs" && mount -t tmpfs -o size=64m tmpfs "$tmp/rofs" \
        2>/dev/null; then
        ro_mnt=$tmp/rofs
        trap 'umount "$ro_mnt" 2>/dev/null; cleanup' EXIT
        cp "$db" "$ro_mnt/ro.db" && mount -o remount,ro "$ro_mnt" ||
                fail "could not make a read-only mount"
        ro=$ro_mnt/ro.db
else
        ro=
fi
if [ -n "$ro" ]; then
        timeout 30 "$of" project --db "$ro" -b "$addr" -g ro -e -q \
                "${fast[@]}" 2>"$tmp/ro.err"
        one_line_exit1 "$tmp/ro.err" $? "read-only"
        figure sqlite_faults 1
        ok "$(cat "$tmp/ro.err")"
else
        echo "ok - $name # SKIP root without mount(8) rights: cannot make a file read-only"
fi
