#!/bin/bash
# contrib/images/nginx.sh: builds `nginx:1.14.2` and `nginx:latest` as a
# docker-archive tarball: a minbase bookworm debootstrap with nginx-light,
# configured as the official nginx image is (site root /usr/share/nginx/html
# with the "Welcome to nginx!" page, logs to stdout/stderr, `nginx -g
# 'daemon off;'`, port 80). The nginx inside is Debian's (1.22); the 1.14.2
# tag is there because the seed tutorial asks for it. Cached like debian.sh.
#
# usage: nginx.sh [-f] [-o FILE]    prints the tarball's path on stdout
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/lib.sh"
img_opts nginx "$@"

if [ "$IMG_FORCE" = 0 ] && [ -s "$IMG_OUT" ]; then
    img_say "cached: $IMG_OUT"
    echo "$IMG_OUT"
    exit 0
fi
[ "$(id -u)" = 0 ] || img_die "debootstrap needs root"

root=$(dirname "$IMG_OUT")/.$(basename "$IMG_OUT").root
trap 'img_release_dir "$root"; rm -rf "$root"' EXIT
img_debootstrap "$root" --include=nginx-light
[ -x "$root/usr/sbin/nginx" ] || img_die "nginx-light did not install"

# The official image's layout.
html=$root/usr/share/nginx/html
mkdir -p "$html"
if ! grep -qs 'Welcome to nginx' "$html/index.html"; then
    cp "$root/var/www/html/index.nginx-debian.html" "$html/index.html" ||
        img_die "no 'Welcome to nginx!' page in the nginx packages"
fi
grep -q 'Welcome to nginx' "$html/index.html" || img_die "$html/index.html is not nginx's welcome page"
[ -e "$html/50x.html" ] || cat >"$html/50x.html" <<'H'
<!DOCTYPE html>
<html>
<head>
<title>Error</title>
</head>
<body>
<h1>An error occurred.</h1>
<p>Sorry, the page you are looking for is currently unavailable.<br/>
Please try again later.</p>
</body>
</html>
H
rm -f "$root/etc/nginx/sites-enabled/default"
mkdir -p "$root/etc/nginx/conf.d"
cat >"$root/etc/nginx/conf.d/default.conf" <<'C'
# As the official nginx image's default.conf.
server {
    listen       80;
    server_name  localhost;

    location / {
        root   /usr/share/nginx/html;
        index  index.html index.htm;
    }

    error_page   500 502 503 504  /50x.html;
    location = /50x.html {
        root   /usr/share/nginx/html;
    }
}
C
ln -sf /dev/stdout "$root/var/log/nginx/access.log"
ln -sf /dev/stderr "$root/var/log/nginx/error.log"
chroot "$root" /usr/sbin/nginx -t -q || img_die "nginx -t fails in the built rootfs"
rm -f "$root/run/nginx.pid"

ver=$(chroot "$root" dpkg-query -W -f '${Version}' nginx-light)
config='"ExposedPorts":{"80/tcp":{}},"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]'
config="$config"',"Cmd":["nginx","-g","daemon off;"],"StopSignal":"SIGQUIT"'
config="$config"',"Labels":{"org.opencontainers.image.description":'"$(img_json_str "Debian bookworm nginx-light $ver configured as the official nginx image (tagged 1.14.2 for the seed tutorial), built by coracle contrib/images/nginx.sh")"
config="$config"',"org.opencontainers.image.version":'"$(img_json_str "$ver")"'}'
img_docker_archive "$IMG_OUT" "$root" "$config" "coracle contrib/images/nginx.sh: debootstrap --variant=minbase --include=nginx-light bookworm ($ver)" \
    nginx:1.14.2 nginx:latest
echo "$IMG_OUT"
