#!/usr/bin/env bash
# Readers without write access: a user of the group that may read the read
# model's folder but not write it (nobody:nogroup here, the folder root's,
# mode 2750, group nogroup) reads the model once the projector (root,
# umask 027) has stopped: orderflow query, orderflow status (the file's
# part) and sqlite3 -readonly give the independent model's figures. A file
# without its -wal and -shm (as an older orderflow left it) is one line
# saying so, until a projector runs on it again. Needs root, for setpriv.
set -u

of=${ORDERFLOW:-build/orderflow}
here=$(cd "$(dirname "$0")" && pwd)
name="readers without write access"
if [ "$(id -u)" -ne 0 ]; then
        echo "ok - $name # SKIP not root: cannot act as another user"
        exit 0
fi
if ! command -v setpriv >/dev/null; then
        echo "ok - $name # SKIP setpriv (util-linux) is missing"
        exit 0
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/orderflow-readonly.XXXXXX") || exit 1
. "$(dirname "$0")/../lib.sh"
broker_pid=
cleanup() {
        [ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null
        wait 2>/dev/null
        rm -rf "$tmp"
}
trap cleanup EXIT
name=setup

[ -x "$of" ] || fail "no binary at $of (run make first)"
for t in kcat sqlite3 python3; do
        command -v "$t" >/dev/null || fail "$t is needed"
done
# The reader must reach the binary (the build folder may be out of its
# reach) and the temporary folder, not more.
chmod 0755 "$tmp"
cp "$of" "$tmp/orderflow" || fail "cannot copy $of"
dir=$tmp/models
mkdir "$dir" && chgrp nogroup "$dir" && chmod 2750 "$dir" ||
        fail "cannot make $dir"
db=$dir/readmodel.db
as_reader() {
        HOME=/ setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"
}
# run_reader ARGS...: orderflow ARGS as the reader; exit code in rc,
# output in $tmp/out and $tmp/err.
run_reader() {
        as_reader "$tmp/orderflow" "$@" >"$tmp/out" 2>"$tmp/err"
        rc=$?
}
# project: a projector as root with umask 027 that stops at the end.
project() {
        (umask 027 && exec "$of" project --db "$db" -b "$addr" -g readonly \
                -e -q 2>"$tmp/proj.err") ||
                fail "the projector exited $?: $(cat "$tmp/proj.err")"
}

start_broker --partitions 3 || fail "the broker printed no address in 10 s"
python3 "$here/gen_stream.py" 1500 11 "$tmp" || fail "gen_stream.py failed"
kcat -P -b "$addr" -t orders -K '|' -l "$tmp/stream.txt" ||
        fail "kcat could not publish"
total=$(wc -l <"$tmp/stream.txt")
want_totals=$(sed -n '/^order_totals$/{n;p;}' "$tmp/expected.txt")
want_events=$(sed -n '/^processed_events$/{n;p;}' "$tmp/expected.txt")
want_orders=$(sed -n '/^order_list$/,/^order_totals$/p' "$tmp/expected.txt" |
        grep -c '|')
project
as_reader test -r "$db" || fail "the reader cannot read $db: $(ls -l "$db")"
as_reader touch "$dir/x" 2>/dev/null && fail "the reader may write $dir"

name="orderflow query totals as a reader, no projector running"
run_reader query totals --db "$db" --json
[ "$rc" -eq 0 ] || fail "exit $rc: $(cat "$tmp/err")"
got=$(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
print("%d|%d|%d|%d" % (r["orders_placed"], r["orders_paid"],
                       r["placed_amount"], r["paid_amount"]))' "$tmp/out") ||
        fail "not one JSON object: $(cat "$tmp/out")"
[ "$got" = "$want_totals" ] || fail "totals $got, the model's $want_totals"
ok

name="orderflow query orders as a reader"
run_reader query orders --db "$db" --json
[ "$rc" -eq 0 ] || fail "exit $rc: $(cat "$tmp/err")"
[ "$(wc -l <"$tmp/out")" -eq "$want_orders" ] ||
        fail "$(wc -l <"$tmp/out") orders, the model has $want_orders"
ok

name="orderflow status as a reader: the file's part"
run_reader status --db "$db" -b "$addr" --json -q
[ "$rc" -eq 0 ] || fail "exit $rc: $(cat "$tmp/err")"
python3 - "$tmp/out" "$total" "$want_events" <<'EOF' || fail "see above"
import json, sys
r = json.load(open(sys.argv[1]))
total, events = int(sys.argv[2]), int(sys.argv[3])
assert r["lag"] == 0, r
assert sum(p["applied"] for p in r["partitions"]) == total, r
assert r["applied"] + r["ignored"] == events, (r, events)
EOF
ok

name="sqlite3 -readonly as a reader"
got=$(as_reader sqlite3 -readonly "$db" \
        "SELECT orders_placed || '|' || orders_paid || '|' || placed_amount
                || '|' || paid_amount FROM order_totals;
         SELECT count(*) FROM order_list;" 2>"$tmp/err") ||
        fail "exit $?: $(cat "$tmp/err")"
[ "$got" = "$want_totals
$want_orders" ] || fail "got '$got', the model's $want_totals and $want_orders"
ok

name="the -wal and -shm stay, with the database file's owner and mode"
for f in "$db-wal" "$db-shm"; do
        [ -e "$f" ] || fail "$f is gone"
        [ "$(stat -c '%a %U %G' "$f")" = "$(stat -c '%a %U %G' "$db")" ] ||
                fail "$(ls -l "$db" "$f")"
done
ok

name="without its -wal and -shm a reader gets one line saying so"
# As an older orderflow left it: the projector stopped cleanly, so its
# WAL is empty and nothing is lost.
[ ! -s "$db-wal" ] || fail "the WAL is not empty: $(ls -l "$db-wal")"
rm "$db-wal" "$db-shm"
run_reader query totals --db "$db"
[ "$rc" -eq 1 ] || fail "expected exit 1, got $rc: $(cat "$tmp/err")"
[ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "not one line: $(cat "$tmp/err")"
grep -qF "orderflow query: $db: its -wal and -shm are missing" "$tmp/err" ||
        fail "got: $(cat "$tmp/err")"
run_reader status --db "$db" -b "$addr"
[ "$rc" -eq 1 ] && grep -qF -- "-wal and -shm are missing" "$tmp/err" ||
        fail "status: exit $rc: $(cat "$tmp/err")"
ok

name="a projector run makes them again, for good"
project
run_reader query totals --db "$db" --json
[ "$rc" -eq 0 ] || fail "exit $rc: $(cat "$tmp/err")"
python3 "$here/gen_stream.py" check "$db" "$tmp" || fail "model differs"
ok
