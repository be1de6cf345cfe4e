#!/usr/bin/env bash
# The durations of `outbox prune --older-than` and `project
# --dedupe-retention` (one parser): a whole number with a unit, at least
# 1s. A bare number, 0 or no unit is a usage error (exit 2, one stderr
# line, alike for both options) that touches no row. No broker needed.
set -u

of=${ORDERFLOW:-build/orderflow}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/orderflow-durations.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/../lib.sh"
db=$tmp/app.db
name=setup

[ -x "$of" ] || fail "no binary at $of (run make first)"
"$of" place --db "$db" --order o-1 --total 5 >/dev/null || fail "place"
# A row SENT in 2000: older than any duration.
sqlite3 "$db" "UPDATE outbox_messages SET status = 'SENT',
    sent_at = '2000-01-01T00:00:00.000Z'" || fail "sqlite3"

# expect_refused OPTION ARG COMMAND...: exit 2, nothing on stdout, and
# exactly the one line naming OPTION and ARG on stderr.
expect_refused() {
        local opt=$1 arg=$2 cmd=$3
        shift 3
        "$of" "$@" >"$tmp/out" 2>"$tmp/err"
        rc=$?
        [ "$rc" -eq 2 ] || fail "'$*': expected exit 2, got $rc"
        [ ! -s "$tmp/out" ] || fail "'$*': stdout: $(cat "$tmp/out")"
        [ "$(cat "$tmp/err")" = "orderflow $cmd: $opt: $arg: not a duration \
like 90m, 36h or 7d (at least 1s) (see 'orderflow $cmd --help')" ] ||
                fail "'$*': stderr: $(cat "$tmp/err")"
}

# Regression (2026-11-27): `outbox prune --older-than 10` deleted every
# SENT row older than 10 seconds (a bare number was seconds) where
# --dedupe-retention refused 0.
name="outbox prune --older-than without a unit or of 0 deletes nothing"
for d in 10 0 0s 0d 10x ''; do
        expect_refused --older-than "$d" "outbox prune" \
                outbox prune --db "$db" --older-than "$d"
done
[ "$(sqlite3 "$db" "SELECT count(*) FROM outbox_messages")" = 1 ] ||
        fail "expected the SENT row kept"
ok

name="project --dedupe-retention refuses the same, alike"
for d in 10 0 0s 0d 10x ''; do
        expect_refused --dedupe-retention "$d" project \
                project --db "$tmp/rm.db" --dedupe-retention "$d"
done
[ ! -e "$tmp/rm.db" ] || fail "expected no read model created"
ok

name="a duration with a unit prunes"
"$of" outbox prune --db "$db" --older-than 10s >"$tmp/out" 2>"$tmp/err" ||
        fail "exit $?: $(cat "$tmp/err")"
[ "$(cat "$tmp/out")" = "1 SENT row deleted" ] || fail "$(cat "$tmp/out")"
ok
