#!/usr/bin/env bash
# Run every test program of a build ($B/tests/test_*, cmocka) and every
# tests/cli/*.sh against $B/orderflow; keep going after a failure, name the
# failures, end with "tests: N passed, M failed" and exit 1 if any failed.
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
limit=${TEST_TIMEOUT:-300}

passed=0
failed=0
failures=()

# run_one NAME COMMAND...: run it, count it, remember it if it failed.
run_one() {
        local name=$1 rc
        shift
        echo "# $name"
        timeout -k 10 "$limit" "$@"
        rc=$?
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

for t in "$B"/tests/test_*; do
        # Skip what is not a program (the compiler's .d files, no match).
        [ -f "$t" ] && [ -x "$t" ] || continue
        run_one "${t#"$root"/}" "$t"
done

for s in tests/cli/*.sh; do
        [ -f "$s" ] || continue
        run_one "$s" bash "$s"
done

for f in "${failures[@]}"; do
        echo "failed: $f"
done
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
