#!/usr/bin/env bash
# The one test runner: every test program of a build ($B/tests/test_*,
# cmocka) and every tests/cli/*.sh against $B/orderflow, or the tests named
# as arguments (programs and scripts: make test-kafka, make test-faults),
# TEST_JOBS (3) at a time: most of them wait on group joins and timeouts
# rather than the CPU. Each test's output is printed whole when it ends;
# keep going after a failure, name the failures and the slowest tests, sum
# the figures the tests report (tests/faults: kills and faults sent and
# landed), end with "tests: N passed, M failed" and exit 1 if any failed.
set -u

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
B=${B:-build}
case $B in
/*) ;;
*) B=$root/$B ;;
esac
export ORDERFLOW=$B/orderflow
# A hung program is a failure, not a hung build.
limit=${TEST_TIMEOUT:-600}
jobs=${TEST_JOBS:-3}
logs=$(mktemp -d "${TMPDIR:-/tmp}/orderflow-tests.XXXXXX") || exit 1
# Lines "KEY N" a test appends (tests/faults/lib.sh, figure), summed.
export TEST_FIGURES=$logs/figures
: >"$TEST_FIGURES"
t_start=$(date +%s)
trap 'kill $(jobs -p) 2>/dev/null; wait; rm -rf "$logs"' EXIT
trap 'exit 130' INT TERM

passed=0
failed=0
failures=()
names=()

# start NAME COMMAND...: run it in the background, its output into
# $logs/N.log, its exit code and seconds into $logs/N.rc.
start() {
        local i=${#names[@]}
        names+=("$1")
        shift
        (
                t0=$(date +%s)
                timeout -k 10 "$limit" "$@" >"$logs/$i.log" 2>&1
                echo "$? $(($(date +%s) - t0))" >"$logs/$i.rc"
        ) &
}

# report I: print test I's output and count it.
report() {
        local name=${names[$1]} rc secs
        read -r rc secs <"$logs/$1.rc"
        echo "# $name ($secs s)"
        cat "$logs/$1.log"
        echo "$secs s  $name" >>"$logs/times"
        if [ "$rc" -eq 0 ]; then
                passed=$((passed + 1))
                return
        fi
        failed=$((failed + 1))
        if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
                failures+=("$name (timed out after ${limit}s)")
        else
                failures+=("$name (exit $rc)")
        fi
        echo "FAILED: $name (exit $rc)"
}

# Report the tests that have ended, in the order they were started.
next=0
report_ended() {
        while [ "$next" -lt "${#names[@]}" ] && [ -e "$logs/$next.rc" ]; do
                report "$next"
                next=$((next + 1))
        done
}

# throttle: wait until fewer than $jobs tests run.
throttle() {
        while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
                wait -n
                report_ended
        done
}

if [ $# -eq 0 ]; then
        set -- "$B"/tests/test_* tests/cli/*.sh
fi
for t in "$@"; do
        # Skip what is not a test (the compiler's .d files, no match).
        [ -f "$t" ] || continue
        throttle
        case $t in
        *.sh) start "$t" bash "$t" ;;
        *) [ -x "$t" ] && start "${t#"$root"/}" "$t" ;;
        esac
done
wait
report_ended

for f in "${failures[@]}"; do
        echo "failed: $f"
done
echo "# slowest:"
sort -rn "$logs/times" | head -5 | sed 's/^/#   /'
# KEY_landed beside KEY: "KEY: landed/sent"; other keys: "KEY: sum".
if [ -s "$TEST_FIGURES" ]; then
        awk '{ if (!($1 in n)) order[++k] = $1; n[$1] += $2 }
             END {
                for (i = 1; i <= k; i++) {
                        key = order[i]
                        if (key ~ /_landed$/) continue
                        if ((key "_landed") in n)
                                print "#   " key ": " n[key "_landed"] "/" n[key] " landed mid-work"
                        else
                                print "#   " key ": " n[key]
                }
             }' "$TEST_FIGURES" | sed '1i # figures:'
fi
echo "tests: $passed passed, $failed failed in $(($(date +%s) - t_start)) s"
[ "$failed" -eq 0 ]
