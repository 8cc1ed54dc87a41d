#!/bin/bash
# contrib/images/debian.sh: builds `debian:latest` (also debian:bookworm,
# debian:12) as a docker-archive tarball: `debootstrap --variant=minbase
# bookworm` from the mirror in this machine's apt configuration, trimmed as
# Debian's docker images are. About a minute and 230 MB the first time; the
# tarball is cached, so later runs are instant (-f rebuilds).
#
# usage: debian.sh [-f] [-o FILE]    prints the tarball's path on stdout
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/lib.sh"
img_opts debian "$@"

if [ "$IMG_FORCE" = 0 ] && [ -s "$IMG_OUT" ]; then
    img_say "cached: $IMG_OUT"
    echo "$IMG_OUT"
    exit 0
fi
[ "$(id -u)" = 0 ] || img_die "debootstrap needs root"

root=$(dirname "$IMG_OUT")/.$(basename "$IMG_OUT").root
trap 'img_release_dir "$root"; rm -rf "$root"' EXIT
img_debootstrap "$root"
ver=$(cat "$root/etc/debian_version")
config='"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["bash"]'
config="$config"',"Labels":{"org.opencontainers.image.description":'"$(img_json_str "Debian $ver bookworm (debootstrap --variant=minbase), built by coracle contrib/images/debian.sh")"
config="$config"',"org.opencontainers.image.version":'"$(img_json_str "$ver")"'}'
img_docker_archive "$IMG_OUT" "$root" "$config" "coracle contrib/images/debian.sh: debootstrap --variant=minbase bookworm ($ver)" \
    debian:latest debian:bookworm debian:12
echo "$IMG_OUT"
