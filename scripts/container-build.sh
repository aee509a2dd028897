#!/usr/bin/env bash
# Build the image with podman on a machine without a container registry: the base comes from
# scripts/container-base.sh (--pull=never), the HEALTHCHECK is kept (--format docker), and pip in
# the build uses this host's pip configuration and CA certificates (read-only mounts that exist
# for the build only; nothing of them stays in the image).
#
#   scripts/container-build.sh [TAG] [podman build args...]
set -euo pipefail
cd "$(dirname "$0")/.."
export CONTAINERS_CONF=${CONTAINERS_CONF:-$PWD/deploy/podman/containers.conf}
TAG=${1:-comparefaces:latest}
shift || true
mounts=()
for path in /etc/ssl/certs/ca-certificates.crt /etc/pip.conf /etc/xdg/pip; do
  [ -e "$path" ] && mounts+=(-v "$path:$path:ro")
done
exec podman build --pull=never --format docker "${mounts[@]}" -t "$TAG" "$@" .
