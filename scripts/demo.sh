#!/usr/bin/env bash
# The demo: sets up a fresh machine (pnpm, packages, nats-server check), then
# runs scripts/demo.ts: migrate, evtctl up, publish, reconcile, trace, isolation,
# status, shutdown. Leaves nothing running and drops its database.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
exec node --import tsx scripts/demo.ts
