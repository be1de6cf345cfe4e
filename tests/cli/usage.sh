#!/usr/bin/env bash
# One condition, one message, whichever command meets it: a directory
# given as --db, a file that is no SQLite database, an application
# database given as a read model and the reverse, a missing file where
# none is created, an empty --db, a bad integer; each compared with the
# line written out here, the command's own "orderflow CMD: " prefix aside
# (found 2026-12: a directory got three different messages from three
# commands, and project, relay, status and rebuild took an empty --db for
# SQLite's temporary database). And `orderflow --version`: orderflow's
# version and git revision, then librdkafka's and SQLite's, checked
# against what pkg-config and the sqlite3 shell say.
set -u

of=${ORDERFLOW:-build/orderflow}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/orderflow-usage.XXXXXX") || exit 1
. "$(dirname "$0")/../lib.sh"
broker_pid=
cleanup() {
        # (braces: no "Killed" notice from the shell)
        { [ -n "$broker_pid" ] && kill -9 "$broker_pid" && wait; } 2>/dev/null
        rm -rf "$tmp"
}
trap cleanup EXIT
name=setup
fast=(-X session.timeout.ms=6000 -X heartbeat.interval.ms=500)

[ -x "$of" ] || fail "no binary at $of (run make first)"
start_broker -p 2 || fail "the broker printed no address in 10 s"
app=$tmp/app.db
rm_db=$tmp/rm.db
"$of" place --db "$app" --order o-1 --total 5 >/dev/null || fail "place"
"$of" project --db "$rm_db" -b "$addr" -e -q "${fast[@]}" ||
        fail "project exit $?"
mkdir "$tmp/dir"
echo "not a database, just some text long enough to fill a header. ....." \
        >"$tmp/junk"

# The commands of each kind of file, PATH standing for --db's argument.
read_model_cmds=(
        "project --db PATH -b $addr -e -q"
        "rebuild --db PATH -b $addr -q"
        "status --db PATH -b $addr"
        "query orders --db PATH"
)
app_cmds=(
        "place --db PATH --order o-2 --total 5"
        "pay --db PATH --order o-1 --amount 5"
        "relay --db PATH -b $addr --once -q"
        "outbox status --db PATH"
        "outbox list --db PATH"
        "outbox retry --db PATH --all-dead"
        "outbox prune --db PATH --older-than 1d"
)

# said RC LINE CMD...: CMD with PATH replaced exits RC, prints nothing on
# stdout, and one stderr line: "orderflow CMD: LINE", where rebuild may add
# "; PATH is unchanged".
said() {
        local want_rc=$1 line=$2 cmd=$3 path=$4 words sub got i
        # shellcheck disable=SC2206 # split on purpose
        words=($cmd)
        for i in "${!words[@]}"; do
                [ "${words[$i]}" = PATH ] && words[$i]=$path
        done
        sub=${words[0]}
        [ "$sub" = outbox ] && sub="outbox ${words[1]}"
        name="$sub: $line"
        "$of" "${words[@]}" >"$tmp/out" 2>"$tmp/err"
        rc=$?
        [ "$rc" -eq "$want_rc" ] ||
                fail "exit $rc, expected $want_rc: $(cat "$tmp/err")"
        [ ! -s "$tmp/out" ] || fail "stdout: $(cat "$tmp/out")"
        got=$(grep -v '^[0-9-]*T[0-9:.]*Z [EWID] ' "$tmp/err")
        got=${got%"; $path is unchanged"}
        [ "$got" = "orderflow $sub: $line" ] ||
                fail "said '$got', expected 'orderflow $sub: $line'"
        ok
}

for c in "${read_model_cmds[@]}"; do
        help=${c%% --db*}
        help=${help% orders}
        said 1 "$tmp/dir: a directory, not a read model" "$c" "$tmp/dir"
        said 1 "$tmp/junk: not a read model: file is not a database" \
                "$c" "$tmp/junk"
        said 1 "$app: an application database, not a read model" "$c" "$app"
        said 2 "--db: empty path (see 'orderflow $help --help')" "$c" ""
done
for c in "${app_cmds[@]}"; do
        said 1 "$tmp/dir: a directory, not an application database" \
                "$c" "$tmp/dir"
        said 1 "$tmp/junk: not an application database: file is not a database" \
                "$c" "$tmp/junk"
        said 1 "$rm_db: a read model, not an application database" \
                "$c" "$rm_db"
        said 2 "--db: empty path (see 'orderflow ${c%% --db*} --help')" \
                "$c" ""
done

# A missing file, where the command creates none.
for c in "status --db PATH -b $addr" "query orders --db PATH"; do
        said 1 "no read model at $tmp/none.db" "$c" "$tmp/none.db"
done
for c in "${app_cmds[@]:1}"; do
        said 1 "no application database at $tmp/none.db" "$c" "$tmp/none.db"
done
name="no file created by a refused command"
[ ! -e "$tmp/none.db" ] || fail "$tmp/none.db was created"
ok

# A bad integer: "--OPTION: not an integer from MIN to MAX" everywhere.
while IFS='|' read -r line cmd; do
        said 2 "$line (see 'orderflow ${cmd%% --*} --help')" "$cmd" "$app"
done <<EOF
--total: not an integer from 0 to 9007199254740991|place --db PATH --order o-3 --total 1x
--amount: not an integer from 0 to 9007199254740991|pay --db PATH --order o-1 --amount -1
--batch: not an integer from 1 to 100000|relay --db PATH --batch 1.5
--limit: not an integer from 0 to 9223372036854775807|outbox list --db PATH --limit x
EOF
while IFS='|' read -r line cmd; do
        said 2 "$line (see 'orderflow ${cmd%% --*} --help')" "$cmd" "$rm_db"
done <<EOF
--batch-max: not an integer from 1 to 1000000|project --db PATH --batch-max 0
--batch-max: not an integer from 1 to 1000000|rebuild --db PATH --batch-max 99999999999
EOF
while IFS='|' read -r line cmd; do
        said 2 "$line (see 'orderflow ${cmd%% -*} --help')" "$cmd" ""
done <<EOF
--partitions: not an integer from 1 to 1000|broker -p 0
--nodes: not an integer from 1 to 32|broker --nodes 33
--orders: not an integer from 1 to 1000000|demo --orders 1e3
EOF

# ---- --version ----
for v in --version -V; do
        name="orderflow $v: versions of orderflow, librdkafka, SQLite"
        run "$v"
        expect_rc 0
        [ ! -s "$tmp/err" ] || fail "stderr: $(cat "$tmp/err")"
        h='[0-9a-f]'
        sed -n 1p "$tmp/out" |
                grep -Eq "^orderflow [0-9]+\.[0-9]+\.[0-9]+ \(git ($h{12}(-dirty)?|unknown)\)$" ||
                fail "line 1: $(sed -n 1p "$tmp/out")"
        [ "$(sed -n 2p "$tmp/out")" = "librdkafka $(pkg-config --modversion rdkafka)" ] ||
                fail "line 2: $(sed -n 2p "$tmp/out")"
        [ "$(sed -n 3p "$tmp/out")" = "SQLite $(sqlite3 --version | cut -d' ' -f1)" ] ||
                fail "line 3: $(sed -n 3p "$tmp/out")"
        [ "$(wc -l <"$tmp/out")" -eq 3 ] || fail "$(cat "$tmp/out")"
        ok
done
