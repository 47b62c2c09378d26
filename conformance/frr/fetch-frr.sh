#!/usr/bin/env bash
# Fetch Debian's frr and libyang2 packages and unpack them (no install, no daemons) into
# conformance/frr/_work, so the lookup2 oracle test can load libfrr.so with ctypes.
# FRR's lib/jhash.c is the Linux kernel's lookup2 jhash.h (before v2.6.38) compiled by
# Debian: an implementation of the old kernel jhash that sidkit did not write.
# Idempotent; needs apt-get (root) the first time. Never committed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$here/_work"
lib="$work/root/usr/lib/x86_64-linux-gnu/frr/libfrr.so.0"
if [ -f "$lib" ]; then
  echo "fetch-frr: ready in $work"
  exit 0
fi
mkdir -p "$work/debs" "$work/root"
cd "$work/debs"
if ! apt-get download frr libyang2 >/dev/null 2>&1; then
  apt-get update -qq
  apt-get download frr libyang2
fi
for deb in frr_*.deb libyang2_*.deb; do
  dpkg-deb -x "$deb" "$work/root"
done
dpkg-deb -f frr_*.deb Version > "$work/frr.version"
echo "fetch-frr: frr $(cat "$work/frr.version") ready in $work"
