#!/usr/bin/env bash
# docker/base-images.sh WORK: make local stand-ins for the Dockerfile's base images, for machines that
# cannot pull (CI, air-gapped hosts). Needs root, debootstrap and a running Docker engine ($DOCKER_HOST).
#
#   witness-trap-base:local     Debian bookworm minbase (debootstrap): the root of the two below, and the
#                               tool image docker/test.sh inspects volumes and /proc with
#   witness-trap-builder:local  + gcc, libc6-dev, CA certificates and this host's Rust toolchain
#                               (stands in for rust:1-bookworm)
#   witness-trap-runtime:local  + CA certificates and the nonroot user 65532, with every shell, apt and
#                               dpkg removed (stands in for gcr.io/distroless/cc-debian12:nonroot)
#
# The debootstrap tree is cached in WORK; an image that exists already is kept.
set -euo pipefail
work=${1:?usage: base-images.sh WORK}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
mkdir -p "$work"

have() { docker image inspect "$1" >/dev/null 2>&1; }

rootfs=$work/rootfs
if [ ! -x "$rootfs/bin/bash" ]; then
  rm -rf "$rootfs"
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1
fi

if ! have witness-trap-base:local; then
  tar -C "$rootfs" -c . | docker import - witness-trap-base:local >/dev/null
fi

# A copy of the tree with more packages, installed in a chroot (the engine's containers may have no
# route to the mirror; the host has).
derive() {
  local dest=$1; shift
  rm -rf "$dest"
  cp -a "$rootfs" "$dest"
  cp /etc/resolv.conf "$dest/etc/resolv.conf"
  chroot "$dest" apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive chroot "$dest" apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  chroot "$dest" apt-get clean
  rm -rf "$dest"/var/lib/apt/lists/*
}

if ! have witness-trap-builder:local; then
  tree=$work/builder-rootfs
  derive "$tree" gcc libc6-dev ca-certificates
  # The host's toolchain, without its documentation (rust:1-bookworm keeps it in /usr/local too).
  sysroot=$(rustc --print sysroot)
  mkdir -p "$tree/usr/local/rust"
  tar -C "$sysroot" --exclude=./share/doc -c . | tar -C "$tree/usr/local/rust" -x
  tar -C "$tree" -c . | docker import \
    --change 'ENV PATH=/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV CARGO_HOME=/usr/local/cargo' \
    - witness-trap-builder:local >/dev/null
  rm -rf "$tree"
fi

if ! have witness-trap-runtime:local; then
  tree=$work/runtime-rootfs
  derive "$tree" ca-certificates
  echo 'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >>"$tree/etc/passwd"
  echo 'nonroot:x:65532:' >>"$tree/etc/group"
  mkdir -p "$tree/home/nonroot" && chown 65532:65532 "$tree/home/nonroot"
  # Like distroless: nothing to run but the binary.
  rm -f "$tree"/bin/sh "$tree"/bin/bash "$tree"/bin/dash "$tree"/bin/rbash "$tree"/usr/bin/apt* "$tree"/usr/bin/dpkg*
  rm -rf "$tree"/usr/share/doc "$tree"/usr/share/man "$tree"/usr/share/info "$tree"/usr/share/locale "$tree"/var/cache/*
  tar -C "$tree" -c . | docker import --change 'USER 65532:65532' - witness-trap-runtime:local >/dev/null
  rm -rf "$tree"
fi
