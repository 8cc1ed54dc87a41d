#!/bin/bash
# contrib/images/busybox.sh: builds `progrium/busybox:latest` as a
# docker-archive tarball from Debian's busybox-static, offline, in seconds.
# The image: /bin/busybox with every applet as a symlink, /etc/passwd and
# /etc/group, and a `curl` shim calling `wget -qO-` so the seed tutorial's
# `curl http://localhost:80` works. The build is reproducible (file times and
# the created date come from /bin/busybox), so the image id is stable.
#
# usage: busybox.sh [-f] [-o FILE]    prints the tarball's path on stdout
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/lib.sh"
img_opts busybox "$@"

BB=${BUSYBOX:-/bin/busybox}
[ -x "$BB" ] || img_die "$BB not found (apt-get install busybox-static)"
file -L "$BB" 2>/dev/null | grep 'statically linked' >/dev/null ||
    ldd "$BB" 2>&1 | grep 'not a dynamic executable' >/dev/null ||
    img_die "$BB is not statically linked (install busybox-static, not busybox)"

if [ "$IMG_FORCE" = 0 ] && [ -s "$IMG_OUT" ] && [ "$IMG_OUT" -nt "$BB" ] && [ "$IMG_OUT" -nt "$0" ]; then
    img_say "cached: $IMG_OUT"
    echo "$IMG_OUT"
    exit 0
fi

root=$(mktemp -d "$(dirname "$IMG_OUT")/.busybox-root.XXXXXX")
trap 'rm -rf "$root"' EXIT
chmod 0755 "$root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,root,home,var/log,var/run,dev,proc,sys,tmp}
chmod 1777 "$root/tmp"
chmod 0700 "$root/root"
install -m 0755 "$BB" "$root/bin/busybox"
"$BB" --list-full | while read -r applet; do
    [ "$applet" = bin/busybox ] && continue
    [ -e "$root/$applet" ] && continue
    ln -s /bin/busybox "$root/$applet"
done
[ -L "$root/bin/sh" ] || img_die "busybox has no sh applet"
[ -L "$root/usr/bin/wget" ] || img_die "busybox has no wget applet"

cat >"$root/usr/bin/curl" <<'SHIM'
#!/bin/sh
# curl shim of coracle's busybox image: `curl [-s|-S|-f|-L|-sSL...] URL...`
# fetches to stdout with busybox wget.
for a do
    shift
    case $a in
    -[sSfLv]* | --silent | --show-error | --fail | --location) ;;
    -o | --output) out=1 ;;
    *) if [ "${out:-}" = 1 ]; then file=$a; out=; else set -- "$@" "$a"; fi ;;
    esac
done
exec wget -q -O "${file:--}" "$@"
SHIM
chmod 0755 "$root/usr/bin/curl"

cat >"$root/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
P
cat >"$root/etc/group" <<'G'
root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
wheel:x:10:root
mail:x:8:
www-data:x:33:
operator:x:37:
users:x:100:
nogroup:x:65534:
G
echo 'root:*:::::::' >"$root/etc/shadow"
chmod 0600 "$root/etc/shadow"
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
: >"$root/etc/resolv.conf"

ver=$("$BB" 2>&1 | awk 'NR == 1 {print $2}')
IMG_MTIME=$(stat -c %Y "$BB")
export IMG_MTIME
config='"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["/bin/sh"]'
config="$config"',"Labels":{"org.opencontainers.image.description":'"$(img_json_str "BusyBox $ver from Debian busybox-static (static /bin/busybox, applet symlinks, curl shim over wget), built by coracle contrib/images/busybox.sh")"
config="$config"',"org.opencontainers.image.version":'"$(img_json_str "$ver")"'}'
img_docker_archive "$IMG_OUT" "$root" "$config" "coracle contrib/images/busybox.sh: Debian busybox-static $ver" \
    progrium/busybox:latest
echo "$IMG_OUT"
