#!/usr/bin/env bash
# The fault suite (make test-faults): each scenario script against
# $B/orderflow, the long projector-kill scenario beside the others when
# FAULTS_JOBS=2 (default; 1 runs one at a time). Prints every check's
# "ok -"/"not ok -" line, then a summary with the figures (kills and
# faults sent, and how many of them landed mid-work) and exits 1 if any
# scenario failed.
set -u

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root" || exit 1
B=${B:-build}
case $B in
/*) ;;
*) B=$root/$B ;;
esac
export ORDERFLOW=$B/orderflow
limit=${FAULTS_TIMEOUT:-400}
jobs=${FAULTS_JOBS:-2}
logs=$(mktemp -d "${TMPDIR:-/tmp}/orderflow-faults-run.XXXXXX") || exit 1
export FAULTS_FIGURES=$logs/figures
: >"$FAULTS_FIGURES"
bg_pid=
cleanup() {
        [ -n "$bg_pid" ] && kill -TERM "$bg_pid" 2>/dev/null && wait "$bg_pid"
        rm -rf "$logs"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start=$(date +%s)
passed=0
failed=0
failures=()

# run_scenario NAME: its output into $logs/NAME.log, its exit code into
# $logs/NAME.rc (124 or 137: timed out).
run_scenario() {
        timeout -k 10 "$limit" bash "tests/faults/$1.sh" >"$logs/$1.log" 2>&1
        echo $? >"$logs/$1.rc"
}

# report NAME: print its lines and count it.
report() {
        local rc
        echo "# tests/faults/$1.sh"
        cat "$logs/$1.log"
        rc=$(cat "$logs/$1.rc")
        if [ "$rc" -eq 0 ]; then
                passed=$((passed + 1))
        else
                failed=$((failed + 1))
                [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] &&
                        echo "not ok - $1: timed out after ${limit}s"
                failures+=("$1 (exit $rc)")
        fi
}

scenarios=(relay_kill sqlite_faults failover broker_faults rebuild_kill)
if [ "$jobs" -ge 2 ]; then
        run_scenario projector_kill &
        bg_pid=$!
else
        run_scenario projector_kill
        report projector_kill
fi
for s in "${scenarios[@]}"; do
        run_scenario "$s"
        report "$s"
done
if [ -n "$bg_pid" ]; then
        wait "$bg_pid"
        bg_pid=
        report projector_kill
fi

fig() { awk -v k="$1" '$1 == k { n += $2 } END { print n + 0 }' "$FAULTS_FIGURES"; }
# mid KEY: "landed/sent" of a kind of fault.
mid() { echo "$(fig "$1_landed")/$(fig "$1")"; }
for f in "${failures[@]}"; do
        echo "failed: $f"
done
echo "faults: $passed passed, $failed failed in $(($(date +%s) - start)) s;" \
        "SIGKILLs mid-work/sent: projector $(mid projector_kills)," \
        "relay $(mid relay_kills), failover $(mid failover_kills)," \
        "rebuild $(mid rebuild_kills);" \
        "broker faults that met the work: $(mid broker_faults);" \
        "SQLite faults injected: $(fig sqlite_faults);" \
        "relay duplicate copies absorbed: $(fig relay_duplicates)"
[ "$failed" -eq 0 ]
