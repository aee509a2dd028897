#!/usr/bin/env bash
# Install the official Node clients the conformance suite drives (tests/conformance/node/node_modules).
# The tests skip with a reason when Node or these modules are absent.
set -euo pipefail
cd "$(dirname "$0")/../tests/conformance/node"
if ! command -v npm >/dev/null 2>&1; then
  echo "npm not found: the Node conformance tests will skip" >&2
  exit 1
fi
if [ -f package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
else
  npm install --no-audit --no-fund --loglevel=error
fi
