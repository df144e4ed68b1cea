#!/usr/bin/env bash
# deploy/image.sh -- build the container image from ./Dockerfile.
#
#   deploy/image.sh [TAG]        (default hyperrec:$VERSION; `make image`)
#
# With a Docker engine, `docker build -t hyperrec .` does the same. Without
# one (these machines), buildah builds the Dockerfile unchanged:
#   - the base is pulled from the registry when one is reachable;
#   - otherwise it is made here: mmdebstrap --variant=minbase bookworm,
#     trimmed as Debian's -slim images are (no man pages, locales, docs),
#     imported with `podman import` and passed as the BASE build argument.
# Needs root (buildah's chroot isolation); installs mmdebstrap, buildah
# and podman from Debian when they are missing. Prints the image's size.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=$(sed -n 's/.*-DHR_VERSION=\\"\([^\\]*\)\\".*/\1/p' Makefile)
TAG=${1:-hyperrec:$VERSION}
PINNED=$(sed -n 's/^ARG BASE=//p' Dockerfile)
LOCAL_BASE=localhost/hyperrec-base:bookworm-minbase
CACHE=${HR_IMAGE_CACHE:-var/image}

need=()
for t in buildah podman mmdebstrap; do
  command -v "$t" >/dev/null 2>&1 || need+=("$t")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "image.sh: missing ${need[*]}; run as root or install them" >&2
    exit 1
  fi
  echo "image.sh: installing ${need[*]} (Debian packages)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends "${need[@]}" uidmap >/dev/null
fi

base_args=()
if timeout 60 buildah pull -q "$PINNED" >/dev/null 2>&1; then
  echo "image.sh: base $PINNED (pulled)"
else
  if ! buildah inspect --type image "$LOCAL_BASE" >/dev/null 2>&1; then
    mkdir -p "$CACHE"
    echo "image.sh: no registry reachable; building the base with mmdebstrap"
    # The same trimming as the -slim images: dpkg skips these paths.
    mmdebstrap --variant=minbase --quiet \
      --dpkgopt='path-exclude=/usr/share/man/*' \
      --dpkgopt='path-exclude=/usr/share/locale/*' \
      --dpkgopt='path-include=/usr/share/locale/locale.alias' \
      --dpkgopt='path-exclude=/usr/share/doc/*' \
      --dpkgopt='path-include=/usr/share/doc/*/copyright' \
      --dpkgopt='path-exclude=/usr/share/info/*' \
      --dpkgopt='path-exclude=/usr/share/lintian/*' \
      bookworm "$CACHE/base.tar"
    podman import -q "$CACHE/base.tar" "$LOCAL_BASE" >/dev/null
    rm -f "$CACHE/base.tar"
  fi
  echo "image.sh: base $LOCAL_BASE (mmdebstrap, bookworm minbase)"
  base_args=(--pull=false --build-arg "BASE=$LOCAL_BASE")
fi

# The image the tag names now, removed after the build when nothing else
# names it (each build makes a new one; no dangling 180 MB left behind).
old=$(podman image inspect --format '{{.Id}}' "$TAG" 2>/dev/null || true)
# docker format: the OCI format has no HEALTHCHECK.
buildah bud --isolation chroot --format docker --layers=false -q \
  "${base_args[@]}" -t "$TAG" . >/dev/null
new=$(podman image inspect --format '{{.Id}}' "$TAG")
if [ -n "$old" ] && [ "$old" != "$new" ] &&
   [ -z "$(podman image inspect --format '{{.RepoTags}}' "$old" | tr -d '[]')" ]; then
  podman rmi -f "$old" >/dev/null 2>&1 || true
fi
size=$(podman image inspect --format '{{.Size}}' "$TAG")
echo "image.sh: built $TAG, $((size / 1000000)) MB ($size bytes)"
