#!/usr/bin/env bash
# SQLite faults under a running projector: another process holding the
# write lock for seconds (the projector waits, logs, goes on); the disk
# full (a small tmpfs filled up: the projector waits, with a warning every
# few seconds, not one per retry, and resumes as soon as space comes back;
# skipped where mount(8) is not allowed); an I/O error (a file-size limit,
# ulimit -f with SIGXFSZ ignored: the WAL cannot grow, SQLite says "disk
# I/O error"): a few retries, then exit 1 with one line, and the next start
# applies everything; a read-only file and a corrupt file (one clear line,
# exit 1). The stream is published in four parts; the read model must end
# exact.
. "$(dirname "$0")/lib.sh"
db=$tmp/rm.db
mounts=()
# Unmount (once nothing of ours uses them) before lib.sh's cleanup.
unmount_all() {
        local p m
        for p in "${pids[@]}"; do
                kill -9 "$p" 2>/dev/null
        done
        wait 2>/dev/null
        for m in "${mounts[@]}"; do
                umount "$m" 2>/dev/null
        done
        cleanup
}
trap unmount_all EXIT

start_broker -p 4
python3 "$gen" 3000 23 "$tmp" || fail "gen_stream.py failed"
total=$(wc -l <"$tmp/stream.txt")
split -n l/4 -d "$tmp/stream.txt" "$tmp/part"
n_a=$(wc -l <"$tmp/part00")
n_b=$((n_a + $(wc -l <"$tmp/part01")))
n_c=$((n_b + $(wc -l <"$tmp/part02")))

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
        wait_for 15 "the projector to stop on SIGTERM" eval '! alive $pid'
        wait "$pid"
        local rc=$?
        [ "$rc" -eq 0 ] || fail "exit $rc after SIGTERM: $(tail -3 "$tmp/$1.err")"
}

name="SQLite: write lock held 4 s by another process"
publish "$tmp/part00"
start_projector lock
wait_for 30 "part 1 applied" offsets_are "$n_a"
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
wait_for 30 "the projector to log that it waits" \
        has_line "$tmp/lock.err" 'retrying'
sleep 4 # the fault's length, not a wait for a result
[ "$(offsets)" -eq "$n_a" ] || fail "applied while the lock was held"
echo release >&"${LOCK[1]}"
wait "$LOCK_PID" || fail "the lock holder failed"
wait_for 30 "part 2 applied after the lock went" offsets_are "$n_b"
figure sqlite_faults 1
ok "$(grep -c retrying "$tmp/lock.err") retries logged: $(grep -m1 retrying "$tmp/lock.err" | cut -c26-)"
stop_projector lock

# warnings FILE: the projector's "retrying" warnings about the read model.
warnings() { grep -c 'read model: .*; retrying (failed [0-9]* time' "$1"; }
warnings_at_least() { [ "$(warnings "$1")" -ge "$2" ]; }

name="SQLite: disk full (a tmpfs) waits, warning now and then, then resumes"
if mkdir "$tmp/full" && mount -t tmpfs -o size=64m tmpfs "$tmp/full" \
        2>/dev/null; then
        mounts+=("$tmp/full")
        # The model moves onto the small file system (the projector has
        # stopped: the file alone is the whole model).
        cp "$db" "$tmp/full/rm.db" || fail "cannot copy the model"
        db=$tmp/full/rm.db
        free=$(df -B1 --output=avail "$tmp/full" | tail -1)
        head -c $((free - 512 * 1024)) /dev/zero >"$tmp/full/filler" ||
                fail "cannot fill $tmp/full"
        start_projector full
        publish "$tmp/part02"
        reported() {
                alive "$pid" ||
                        fail "the projector exited: $(tail -2 "$tmp/full.err")"
                warnings_at_least "$tmp/full.err" "$1"
        }
        wait_for 60 "the projector to report the full disk" reported 1
        grep -q 'database or disk is full' "$tmp/full.err" ||
                fail "not reported as a full disk: $(grep -m1 retrying "$tmp/full.err")"
        # The second warning comes OF_RETRY_LOG_MS (5 s) after the first.
        wait_for 60 "a second warning" reported 2
        stuck=$(offsets)
        [ "$stuck" -lt "$n_c" ] || fail "everything applied despite the full disk"
        sleep 1 # the fault's length, not a wait for a result
        [ "$(offsets)" -eq "$stuck" ] || fail "applied while the disk was full"
        rm "$tmp/full/filler"
        wait_for 60 "the rest applied once space came back" offsets_are "$n_c"
        has_line "$tmp/full.err" 'read model: going on after' ||
                fail "no line saying it went on"
        lines=$(warnings "$tmp/full.err")
        tries=$(grep 'read model: .*; retrying (failed' "$tmp/full.err" |
                tail -1 | sed 's/.*(failed \([0-9]*\) time.*/\1/')
        [ "$tries" -gt "$lines" ] ||
                fail "$lines warnings for $tries failed attempts: one per retry"
        stop_projector full
        figure sqlite_faults 1
        ok "stuck at $stuck of $n_c; $lines warnings for $tries attempts: $(grep -m1 retrying "$tmp/full.err" | cut -c26-)"
else
        echo "ok - $name # SKIP mount(8) of a tmpfs is not allowed here"
        publish "$tmp/part02"
fi

name="SQLite: an I/O error (file size limit): a few retries, exit 1, one line"
# ulimit -f counts 1 KiB blocks: the WAL may grow by about 1 MiB.
(trap '' XFSZ; ulimit -S -f $(($(stat -c %s "$db") / 1024 + 1024)) &&
        exec "$of" project --db "$db" -b "$addr" -g io --batch-max 5 -q \
                "${fast[@]}" 2>"$tmp/io.err") &
pid=$!
pids+=("$pid")
publish "$tmp/part03"
wait_for 60 "the projector to give up on the I/O error" eval '! alive $pid'
wait "$pid"
rc=$?
[ "$rc" -eq 1 ] || fail "expected exit 1, got $rc: $(tail -3 "$tmp/io.err")"
[ "$(wc -l <"$tmp/io.err")" -eq 1 ] ||
        fail "expected one line, got: $(cat "$tmp/io.err")"
grep -q '^orderflow project: .*disk I/O error (5 attempts)$' "$tmp/io.err" ||
        fail "got: $(cat "$tmp/io.err")"
stuck=$(offsets)
[ "$stuck" -lt "$total" ] || fail "everything applied despite the limit"
timeout 120 "$of" project --db "$db" -b "$addr" -g io -e -q "${fast[@]}" \
        2>"$tmp/io2.err" || fail "the next start exited $?: $(cat "$tmp/io2.err")"
offsets_are "$total" || fail "$(offsets) of $total applied after the restart"
model_exact "$db" "$tmp"
figure sqlite_faults 1
ok "stopped at $stuck of $total: $(cat "$tmp/io.err")"

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
        mounts+=("$ro_mnt")
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
