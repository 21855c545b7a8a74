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

mapfile -t files < <(find packages/*/test tests -name '*.test.ts' 2>/dev/null | sort)
echo "test: ${#files[@]} test files"
exec node --import tsx --test --test-concurrency=2 --test-timeout=180000 "${files[@]}"
