#!/usr/bin/env bash
# The whole test suite, as CI runs it: set up a fresh machine, type-check, and
# run every test with node's own test runner through tsx against the real
# PostgreSQL and nats-server processes the tests start or create.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

echo "test: format and lint (biome check)"
$PNPM exec biome check .

echo "test: type-check (tsc --noEmit)"
$PNPM exec tsc --noEmit -p tsconfig.json

echo "test: evtctl bundled once for the CLI subprocess tests (scripts/test-cli-bundle.ts)"
EVTCTL_TEST_BIN="$(node --import tsx scripts/test-cli-bundle.ts)"
export EVTCTL_TEST_BIN

echo "test: one migrated template database for the run (scripts/test-template.ts)"
EP_TEST_TEMPLATE_DB="$(node --import tsx scripts/test-template.ts create)"
export EP_TEST_TEMPLATE_DB
long_pid=
cleanup() {
  if [ -n "$long_pid" ]; then kill "$long_pid" 2>/dev/null || true; fi
  node --import tsx scripts/test-template.ts drop "$EP_TEST_TEMPLATE_DB" || true
}
trap cleanup EXIT

# Latency measurements under load run alone, after the rest: another test file beside them on a
# two-core machine would be part of what they measure.
solo=(tests/faults/tenant-flood.test.ts)
# node's runner sorts the files it is given, so it cannot start the longest first: they run in a second runner
# of their own, two at a time, beside the rest three at a time (five files at once). Each of these takes 40-100 s
# on a quiet machine; sorted among the rest, the last of them would run on alone at the end.
long=(tests/adoption.test.ts tests/demo.test.ts tests/faults/nats-outage.test.ts tests/faults/pg-terminate.test.ts
  tests/faults/process-kills.test.ts tests/faults/relay-process.test.ts tests/ops/ops-endpoints.test.ts
  tests/ops/status-check.test.ts)
mapfile -t rest < <(find packages/*/test tests -name '*.test.ts' 2>/dev/null | grep -vxF "${solo[@]/#/-e}" | grep -vxF "${long[@]/#/-e}" | sort)
echo "test: ${#rest[@]} + ${#long[@]} test files (the long ones in a runner of their own, its report after the rest's), then ${#solo[@]} alone"
# A file is stopped after 300 s (a hang guard, not a promise: the longest takes about 100 s quiet, five files share
# two cores, and a loaded machine stretches every file).
status=0
long_log="$(mktemp)"
node --import tsx --test --test-concurrency=2 --test-timeout=300000 "${long[@]}" >"$long_log" 2>&1 &
long_pid=$!
node --import tsx --test --test-concurrency=3 --test-timeout=300000 "${rest[@]}" || status=$?
long_status=0
wait "$long_pid" || long_status=$?
echo "test: the long files' runner (exit $long_status):"
cat "$long_log"
rm -f "$long_log"
long_pid=
[ "$long_status" = 0 ] || status=$long_status
node --import tsx --test --test-concurrency=1 --test-timeout=420000 "${solo[@]}" || status=$?
exit "$status"
