#!/usr/bin/env bash
# Install the official Node clients the tests drive: the Cloudauth clients of the conformance suite
# (tests/conformance/node) and the OSS client of the upload tests (tests/oss/node).
# The tests skip with a reason when Node or these modules are absent.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if ! command -v npm >/dev/null 2>&1; then
  echo "npm not found: the Node tests will skip" >&2
  exit 1
fi
for folder in tests/conformance/node tests/oss/node; do
  cd "$root/$folder"
  if [ -f package-lock.json ]; then
    npm ci --no-audit --no-fund --loglevel=error
  else
    npm install --no-audit --no-fund --loglevel=error
  fi
done
