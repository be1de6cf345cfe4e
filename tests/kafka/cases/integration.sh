#!/usr/bin/env bash
# The integration test programs (test_relay, test_projector, test_rebuild:
# the projector over TCP, crashes between commits, a second consumer
# joining, partition order read back) on real Kafka: one broker for both,
# each test's topic deleted and created again empty (tests/tu_broker.h).
# The tests that inject faults through the embedded broker's mock cluster
# skip themselves there; the rest must pass as on the embedded broker.
set -u

of=${ORDERFLOW:-build/orderflow} # before lib.sh: its $kadmin is beside $of
. "$(dirname "$0")/../../lib.sh"
. "$(dirname "$0")/../lib.sh"
kafka_case integration
tests=$(dirname "$of")/tests
name=setup
start_broker -p 1 || fail "the broker printed no address in $broker_wait s"
for t in test_relay test_projector test_rebuild; do
        name="$t on real Kafka"
        [ -x "$tests/$t" ] || fail "no program $tests/$t (make first)"
        OF_TEST_KAFKA=$addr "$tests/$t" >"$tmp/$t.out" 2>&1
        rc=$?
        cat "$tmp/$t.out"
        [ "$rc" -eq 0 ] || fail "exit $rc"
        passed=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$tmp/$t.out")
        skipped=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' "$tmp/$t.out")
        [ "${passed:-0}" -gt 0 ] || fail "no test passed"
        echo "# $t: ${passed:-0} passed, ${skipped:-0} skipped (mock faults)"
        ok
done
