#!/usr/bin/env bash
# The whole test suite, as CI runs it: set up a fresh machine, type-check, and
# run every test with node's own test runner through tsx against the real
# PostgreSQL and nats-server processes the tests start or create.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

# The checks and the builds are independent: biome and tsc run beside the bundles and the template database.
checks="$(mktemp -d)"
echo "test: format and lint (biome check) and type-check (tsc --noEmit), beside the builds below"
$PNPM exec biome check . >"$checks/biome" 2>&1 &
biome_pid=$!
$PNPM exec tsc --noEmit -p tsconfig.json >"$checks/tsc" 2>&1 &
tsc_pid=$!

echo "test: evtctl bundled once for the CLI subprocess tests (scripts/test-cli-bundle.ts)"
EVTCTL_TEST_BIN="$(node --import tsx scripts/test-cli-bundle.ts)"
export EVTCTL_TEST_BIN

echo "test: the test processes' many-module dependencies bundled (scripts/test-deps-bundle.ts)"
test_deps="$(node --import tsx scripts/test-deps-bundle.ts)"

echo "test: one migrated template database for the run (scripts/test-template.ts)"
EP_TEST_TEMPLATE_DB="$(node --import tsx scripts/test-template.ts create)"
export EP_TEST_TEMPLATE_DB
cleanup() {
  node --import tsx scripts/test-template.ts drop "$EP_TEST_TEMPLATE_DB" || true
}
trap cleanup EXIT

checked=0
wait "$biome_pid" || checked=$?
cat "$checks/biome"
[ "$checked" = 0 ] || { echo "test: biome check failed"; exit 1; }
wait "$tsc_pid" || checked=$?
cat "$checks/tsc"
[ "$checked" = 0 ] || { echo "test: tsc --noEmit failed"; exit 1; }
rm -rf "$checks"

# Latency measurements under load run alone, after the rest: another test file beside them on a
# two-core machine would be part of what they measure.
solo=(tests/faults/tenant-flood.test.ts)
# Every other test file runs in one of the processes scripts/test-plan.ts plans (groups of one package's files,
# and files that keep a process of their own), longest first, five at a time.
groups_dir=.test-groups
rm -rf "$groups_dir" && mkdir "$groups_dir"
node --import tsx scripts/test-plan.ts "$groups_dir" \
  $(find packages/*/test tests -name '*.test.ts' | grep -vxF "${solo[@]/#/-e}" | sort) >"$groups_dir/plan"
mapfile -t rest <"$groups_dir/plan"
echo "test: $(cat "$groups_dir"/*.test.ts | wc -l) test files in ${#rest[@]} processes (scripts/test-plan.ts), then ${#solo[@]} alone"
# Five files (a group: the whole group) at once on the two cores. A file is stopped after 420 s (a hang guard, not a
# promise: the longest takes about 110 s with five processes sharing the cores, and a loaded machine stretches
# every file).
status=0
node --import tsx --import "$test_deps" --test --test-concurrency=5 --test-timeout=420000 --test-reporter=tap --test-reporter-destination=stdout \
  --test-reporter=./scripts/test-times.mjs --test-reporter-destination="$groups_dir/times.txt" "${rest[@]}" || status=$?
# A file that reported fewer top-level tests than it declares fails the run (scripts/test-counts-check.mjs).
node scripts/test-counts-check.mjs "$groups_dir" || status=1
node --import tsx --import "$test_deps" --test --test-concurrency=1 --test-timeout=420000 "${solo[@]}" || status=$?
echo "test: where the time went (scripts/test-times.mjs; scripts/test-durations.txt, which plans the groups, is a copy):"
head -11 "$groups_dir/times.txt"
exit "$status"
