#!/bin/bash
# contrib/images/all.sh: builds the seed tutorial's images with no registry
# and imports them into the node's image store:
#   progrium/busybox:latest  (busybox.sh: offline, seconds; must work)
#   debian:latest            (debian.sh: debootstrap from this machine's apt mirror)
#   nginx:1.14.2, nginx:latest (nginx.sh: the same, with nginx-light)
# The debootstrap images are skipped with a warning when the mirror cannot
# be reached (unless --strict). Tarballs are cached in $CORACLE_IMAGE_CACHE
# (default /var/cache/coracle/images), so a second run only imports.
#
# usage: all.sh [--image-dir DIR] [--no-import] [--strict] [-f]
#   --image-dir DIR  the store to import into (default: coraclectl's:
#                    $CORACLE_IMAGE_DIR, else /var/lib/coracle/kubelet/images)
#   --no-import      only build the tarballs
#   --strict         fail if an image cannot be built
#   -f               rebuild even if cached
# coraclectl is $CORACLECTL, else $CORACLE_BUILD/coraclectl, else the one in PATH.
set -uo pipefail
here=$(dirname "$(readlink -f "$0")")
. "$here/lib.sh"

dir= import=1 strict=0 force=
while [ $# -gt 0 ]; do
    case $1 in
    --image-dir)
        [ $# -ge 2 ] || img_die "--image-dir needs a directory"
        dir=$2
        shift
        ;;
    --image-dir=*) dir=${1#*=} ;;
    --no-import) import=0 ;;
    --strict) strict=1 ;;
    -f | --force) force=-f ;;
    -h | --help)
        sed -n '2,/^set /p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
        exit 0
        ;;
    *) img_die "unknown option '$1' (try --help)" ;;
    esac
    shift
done

ctl=${CORACLECTL:-}
if [ -z "$ctl" ] && [ -n "${CORACLE_BUILD:-}" ] && [ -x "$CORACLE_BUILD/coraclectl" ]; then
    ctl=$CORACLE_BUILD/coraclectl
fi
[ -n "$ctl" ] || ctl=$(command -v coraclectl || true)
if [ "$import" = 1 ]; then
    [ -n "$ctl" ] || img_die "coraclectl not found (set CORACLECTL or CORACLE_BUILD, or use --no-import)"
    "$ctl" image --help >/dev/null 2>&1 || img_die "$ctl has no 'image' command"
fi

built=() failed=()
for img in busybox debian nginx; do
    img_say "building $img"
    if out=$("$here/$img.sh" $force); then
        built+=("$out")
    elif [ "$img" = busybox ] || [ "$strict" = 1 ]; then
        img_die "$img.sh failed"
    else
        img_say "WARNING: skipping $img: $img.sh failed (is the Debian mirror reachable?)"
        failed+=("$img")
    fi
done

rc=0
if [ "$import" = 1 ]; then
    for f in "${built[@]}"; do
        "$ctl" image import "$f" ${dir:+--image-dir "$dir"} || rc=1
    done
    "$ctl" image ls ${dir:+--image-dir "$dir"} || rc=1
else
    printf '%s\n' "${built[@]}"
fi
[ ${#failed[@]} -eq 0 ] || img_say "not built: ${failed[*]}"
exit $rc
