#!/usr/bin/env bash
# A SQLite file of another program (a table `users`) given to every command
# that opens a read model or an application database: exit 1, one line
# naming the file and the table, and the file left as it was (its dump and
# journal mode, and byte for byte; a WAL-mode one with a commit still in
# its -wal too). No broker is needed: the file is refused first.
set -u

of=${ORDERFLOW:-build/orderflow}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/orderflow-foreign.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/../lib.sh"
name=setup
nobroker=127.0.0.1:9

[ -x "$of" ] || fail "no binary at $of (run make first)"
command -v sqlite3 >/dev/null || fail "sqlite3 is needed"

# A rollback-journal file, and a WAL one whose last commit is still in its
# -wal (its writer closed without a checkpoint).
db=$tmp/users.db
sqlite3 "$db" "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);
               INSERT INTO users (name) VALUES ('ann'), ('bob');" ||
        fail "sqlite3 could not make $db"
wal=$tmp/wal.db
sqlite3 "$wal" ".dbconfig no_ckpt_on_close on" \
        "PRAGMA journal_mode = WAL;" \
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);" \
        "INSERT INTO users (name) VALUES ('cy');" >/dev/null ||
        fail "sqlite3 could not make $wal"
[ -s "$wal-wal" ] || fail "no commit left in $wal-wal"
mkdir "$tmp/orig" && cp "$db" "$wal" "$wal-wal" "$tmp/orig/" ||
        fail "cannot copy the files"
sqlite3 "$db" .dump >"$tmp/dump.before" || fail "sqlite3 .dump failed"
mode_before=$(sqlite3 "$db" "PRAGMA journal_mode")

# refused FILE KIND ARGS...: orderflow ARGS exits 1 with the one line.
refused() {
        local file=$1 kind=$2 line
        shift 2
        timeout 60 "$of" "$@" >"$tmp/out" 2>"$tmp/err"
        rc=$?
        line="$file: a database of another program (table users), not $kind"
        [ "$rc" -eq 1 ] ||
                fail "orderflow $*: expected exit 1, got $rc: $(cat "$tmp/err")"
        [ "$(wc -l <"$tmp/err")" -eq 1 ] ||
                fail "orderflow $*: expected one line, got: $(cat "$tmp/err")"
        grep -q "^orderflow $1" "$tmp/err" && grep -qF "$line" "$tmp/err" ||
                fail "orderflow $*: expected '$line', got: $(cat "$tmp/err")"
}

for f in "$db" "$wal"; do
        name="read-model commands refuse $(basename "$f")"
        refused "$f" "a read model" project --db "$f" -b $nobroker -e
        refused "$f" "a read model" rebuild --db "$f" -b $nobroker
        refused "$f" "a read model" status --db "$f" -b $nobroker
        for what in orders totals daily dead-letters; do
                refused "$f" "a read model" query $what --db "$f"
        done
        ok

        name="application-database commands refuse $(basename "$f")"
        refused "$f" "an application database" place --db "$f" \
                --order o-1 --total 5
        refused "$f" "an application database" pay --db "$f" \
                --order o-1 --amount 5
        refused "$f" "an application database" relay --db "$f" \
                -b $nobroker --once
        refused "$f" "an application database" outbox status --db "$f"
        refused "$f" "an application database" outbox retry --db "$f" \
                --all-dead
        refused "$f" "an application database" outbox prune --db "$f" \
                --older-than 1d
        ok
done

name="the files are as they were"
for f in users.db wal.db wal.db-wal; do
        cmp -s "$tmp/orig/$f" "$tmp/$f" || fail "$f changed"
done
[ ! -e "$db-wal" ] || fail "$db got a -wal"
sqlite3 "$db" .dump >"$tmp/dump.after" || fail "sqlite3 .dump failed"
diff -u "$tmp/dump.before" "$tmp/dump.after" >&2 || fail "the dump changed"
[ "$(sqlite3 "$db" "PRAGMA journal_mode")" = "$mode_before" ] ||
        fail "journal mode $(sqlite3 "$db" "PRAGMA journal_mode"), was $mode_before"
ok
