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
cleanup() {
  node --import tsx scripts/test-template.ts drop "$EP_TEST_TEMPLATE_DB" || true
}
trap cleanup EXIT

# Latency measurements under load run alone, after the rest: another test file beside them on a
# two-core machine would be part of what they measure.
solo=(tests/faults/tenant-flood.test.ts)
# The longest files (40-110 s each on this two-core machine) start first, so none of them runs on alone at the end.
# node's runner sorts the files it is given, so each gets a one-line wrapper .test-groups/0-<n>.test.ts that sorts
# before everything else; a wrapper of one file is still a process of its own.
long=(tests/adoption.test.ts tests/demo.test.ts tests/faults/nats-outage.test.ts tests/faults/pg-terminate.test.ts
  tests/faults/process-kills.test.ts tests/faults/relay-process.test.ts tests/ops/ops-endpoints.test.ts
  tests/ops/status-check.test.ts)
# Most test files run in groups: one node process imports the files of a group and runs their tests in turn,
# each test reported (and counted) as before. A test file's own process costs ~2 s of CPU before its first test
# (node, tsx's loader hooks, the packages imported through them): with 160 files that was a third of the suite's
# CPU, on two cores the suite keeps 99 % busy (docs/testing.md, "How the suite runs"). Groups are dealt
# round-robin from the sorted files so each takes about as long: 60-120 s when five share the two cores, for
# node's runner times a file's whole run against --test-timeout (a group of 300 s, loaded, was cancelled). Files
# that start, kill or watch processes of their own (tests/faults, tests/ops, the fixture tests below) keep a
# process each.
own=(packages/bus-nats/test/fixture-children-die.test.ts packages/bus-nats/test/process-groups.test.ts)
group_of() {
  case $1 in
    packages/store-pg/test/*) echo store-pg:2 ;;
    packages/core/test/* | packages/runtime/test/*) echo core-runtime:1 ;;
    packages/bus-nats/test/*) echo bus-nats:4 ;;
    packages/evtctl/test/*) echo evtctl:5 ;;
    tests/security/*) echo tests:1 ;;
    tests/*/*) ;;
    tests/*) echo tests:1 ;;
  esac
}
groups_dir=.test-groups
rm -rf "$groups_dir" && mkdir "$groups_dir"
for i in "${!long[@]}"; do echo "import '../${long[$i]}'" >"$groups_dir/0-$i-$(basename "${long[$i]}")"; done
declare -A dealt=()
rest=()
grouped=0
while read -r f; do
  g="$(group_of "$f")"
  if [ -z "$g" ] || printf '%s\n' "${own[@]}" | grep -qxF "$f"; then
    rest+=("$f")
    continue
  fi
  name="${g%%:*}"
  n="${dealt[$name]:-0}"
  dealt[$name]=$((n + 1))
  echo "import '../$f'" >>"$groups_dir/$name-$((n % ${g##*:} + 1)).test.ts"
  grouped=$((grouped + 1))
done < <(find packages/*/test tests -name '*.test.ts' 2>/dev/null | grep -vxF "${solo[@]/#/-e}" | grep -vxF "${long[@]/#/-e}" | sort)
mapfile -t group_files < <(find "$groups_dir" -name '*.test.ts' | sort)
rest=("${group_files[@]}" "${rest[@]}")
echo "test: $grouped test files in $((${#group_files[@]} - ${#long[@]})) groups, ${#long[@]} long files first and $((${#rest[@]} - ${#group_files[@]})) more on their own, then ${#solo[@]} alone"
# Five files (a group: the whole group) at once on the two cores. A file is stopped after 420 s (a hang guard, not a
# promise: the longest takes about 110 s with five processes sharing the cores, and a loaded machine stretches
# every file).
status=0
node --import tsx --test --test-concurrency=5 --test-timeout=420000 --test-reporter=tap --test-reporter-destination=stdout \
  --test-reporter=./scripts/test-times.mjs --test-reporter-destination="$groups_dir/times.txt" "${rest[@]}" || status=$?
node --import tsx --test --test-concurrency=1 --test-timeout=420000 "${solo[@]}" || status=$?
echo "test: where the time went (scripts/test-times.mjs), the ten longest:"
head -11 "$groups_dir/times.txt"
exit "$status"
