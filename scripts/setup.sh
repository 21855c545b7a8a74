#!/usr/bin/env bash
# Sets up a fresh machine for eventplane: pnpm (from the npm registry), the
# workspace's packages, and checks for PostgreSQL and nats-server. Sourced by
# scripts/test.sh and scripts/demo.sh; defines $PNPM.
set -euo pipefail

# Done already in this run: scripts/test.sh sources this first and exports EP_SETUP_DONE, so the demo test's
# `bash scripts/demo.sh` in the same checkout does not install again (pnpm install of an installed tree: ~3 s of CPU).
if [ "${EP_SETUP_DONE:-}" = "$PWD" ] && [ -n "${PNPM:-}" ]; then return 0; fi

PNPM_VERSION=10.34.9
if command -v pnpm >/dev/null 2>&1 && [ "$(pnpm --version 2>/dev/null)" = "$PNPM_VERSION" ]; then
  PNPM=pnpm
elif npm install -g --silent "pnpm@$PNPM_VERSION" >/dev/null 2>&1 && command -v pnpm >/dev/null 2>&1; then
  echo "setup: installed pnpm $PNPM_VERSION from the npm registry"
  PNPM=pnpm
else
  PNPM="npx -y pnpm@$PNPM_VERSION"
fi
export PNPM

$PNPM install --frozen-lockfile --reporter=silent

if ! command -v nats-server >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: nats-server is missing; installing the Debian package nats-server"
    (apt-get install -y -qq nats-server >/dev/null 2>&1 || { apt-get update -qq >/dev/null && apt-get install -y -qq nats-server >/dev/null; })
  else
    echo "setup: nats-server is missing; install it with: sudo apt-get install nats-server" >&2
    exit 3
  fi
fi

PGURL="${EVENTPLANE_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
if ! node -e "
  const net = require('node:net'); const u = new URL(process.argv[1]);
  const s = net.connect(Number(u.port || 5432), u.hostname, () => { s.end(); process.exit(0) });
  s.on('error', () => process.exit(1)); setTimeout(() => process.exit(1), 3000);" "$PGURL"; then
  echo "setup: PostgreSQL is not reachable at $(echo "$PGURL" | sed -E 's#//[^@]*@#//#'); start it with: pg_ctlcluster 15 main start" >&2
  exit 3
fi
export EP_SETUP_DONE="$PWD"
