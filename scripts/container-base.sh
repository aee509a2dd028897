#!/usr/bin/env bash
# A local stand-in for the python:3.11-slim base image, made from Debian's own packages, for
# machines that reach Debian's and PyPI's registries but no container registry (like this
# project's CI). Debian bookworm's Python is 3.11; a venv first on PATH gives the image a `python`
# and a `pip` of its own (Debian's is externally managed). The root filesystem is cached as a tar.
#
#   scripts/container-base.sh            # imports it as python:3.11-slim unless present
#   podman build --pull=never --format docker -t comparefaces .
set -euo pipefail
export CONTAINERS_CONF=${CONTAINERS_CONF:-$(cd "$(dirname "$0")/.." && pwd)/deploy/podman/containers.conf}
TAGS=(docker.io/library/python:3.11-slim localhost/python:3.11-slim)
CACHE=${COMPAREFACES_BASE_CACHE:-/var/cache/comparefaces/python-3.11-slim-bookworm.tar}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if podman image exists "${TAGS[0]}"; then
  echo "base image ${TAGS[0]} already present"
  exit 0
fi
if [ ! -s "$CACHE" ]; then
  command -v debootstrap >/dev/null || { echo "debootstrap is not installed" >&2; exit 1; }
  root=$(mktemp -d)
  trap 'rm -rf "$root"' EXIT
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$root" "$MIRROR" >/dev/null
  chroot "$root" python3 -m venv /usr/local/python
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/*
  mkdir -p "$(dirname "$CACHE")"
  tar -C "$root" -cf "$CACHE.partial" . && mv "$CACHE.partial" "$CACHE"
fi
podman import \
  --change 'ENV PATH=/usr/local/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' \
  "$CACHE" "${TAGS[0]}" >/dev/null
podman tag "${TAGS[0]}" "${TAGS[1]}"
echo "imported ${TAGS[0]} from $CACHE"
