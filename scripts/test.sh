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
trap 'node --import tsx scripts/test-template.ts drop "$EP_TEST_TEMPLATE_DB" || true' EXIT

# Latency measurements under load run alone, after the rest: another test file beside them on a
# two-core machine would be part of what they measure.
solo=(tests/faults/tenant-flood.test.ts)
# The longest files start first, so that no long file starts last and runs on alone (each takes 50-110 s here).
first=(tests/demo.test.ts tests/adoption.test.ts packages/evtctl/test/bus.test.ts tests/faults/relay-process.test.ts)
mapfile -t rest < <(find packages/*/test tests -name '*.test.ts' 2>/dev/null | grep -vxF "${solo[@]/#/-e}" | grep -vxF "${first[@]/#/-e}" | sort)
files=("${first[@]}" "${rest[@]}")
echo "test: ${#files[@]} test files, then ${#solo[@]} alone"
status=0
node --import tsx --test --test-concurrency=5 --test-timeout=180000 "${files[@]}" || status=$?
node --import tsx --test --test-concurrency=1 --test-timeout=420000 "${solo[@]}" || status=$?
exit "$status"
