#!/usr/bin/env bash
# deps.sh - install the Debian packages vgpt builds and tests with.
#   tools/deps.sh          build + run time packages
#   tools/deps.sh test     also the PyTorch reference and sanitizer runtimes
# As root it installs what is missing; otherwise it prints the apt-get line.
set -eu
pkgs="build-essential pkg-config libopenblas-dev libzmq3-dev libmsgpack-dev libvips-dev liblmdb-dev libsystemd-dev libdnnl-dev libexempi-dev python3"
if [ "${1:-}" = test ]; then
    pkgs="$pkgs clang libclang-rt-dev python3-torch python3-torchvision python3-numpy python3-pil iproute2 procps systemd time bc exempi libimage-exiftool-perl"
fi
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
    echo "deps: installing$missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2
    apt-get install -y -q --no-install-recommends $missing >&2
else
    echo "deps: missing Debian packages:$missing" >&2
    echo "deps: run: sudo apt-get install$missing" >&2
    exit 1
fi
