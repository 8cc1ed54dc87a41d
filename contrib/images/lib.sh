# contrib/images/lib.sh: shell functions shared by the image scripts
# (busybox.sh, debian.sh, nginx.sh, all.sh). Sourced, not run.
#
# They build docker-archive tarballs (the `docker save` format: manifest.json
# with Config/RepoTags/Layers, <config sha256>.json, <diff id>/layer.tar) with
# plain tar, from a root filesystem directory, with no registry. Results are
# cached under $CORACLE_IMAGE_CACHE (default /var/cache/coracle/images) so a
# second run is instant; `-f` rebuilds.

IMG_CACHE=${CORACLE_IMAGE_CACHE:-/var/cache/coracle/images}

img_die()
{
    echo "${0##*/}: $*" >&2
    exit 1
}

img_say()
{
    echo "${0##*/}: $*" >&2
}

# The Debian architecture name, which is also the OCI one for amd64/arm64.
img_arch()
{
    local a
    a=$(dpkg --print-architecture 2>/dev/null) || a=$(uname -m)
    case $a in
    x86_64) a=amd64 ;;
    aarch64) a=arm64 ;;
    armhf) a=arm ;;
    esac
    echo "$a"
}

# Prints the Debian mirror this machine's apt uses for SUITE (default
# bookworm): the URIs of the first deb822 paragraph (sources.list.d/*.sources)
# whose Suites list SUITE, else the first matching `deb` line of
# sources.list(.d/*.list). Never a built-in host name: the machine decides.
img_mirror()
{
    local suite=${1:-bookworm} f uri=
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        uri=$(awk -v suite="$suite" '
            function flush() {
                if (!found && types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " suite " ") && uris != "") {
                    split(uris, u, " "); print u[1]; found = 1
                }
                types = ""; suites = ""; uris = ""
            }
            /^[ \t]*$/ { flush(); next }
            /^#/ { next }
            tolower($1) == "types:" { $1 = ""; types = $0 }
            tolower($1) == "suites:" { $1 = ""; suites = $0 }
            tolower($1) == "uris:" { $1 = ""; uris = $0 }
            END { flush() }' "$f")
        uri=${uri# }
        [ -n "$uri" ] && break
    done
    if [ -z "$uri" ]; then
        for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
            [ -r "$f" ] || continue
            # deb [options] URI SUITE COMPONENTS...
            uri=$(awk -v suite="$suite" '
                $1 == "deb" {
                    i = 2
                    if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                    if ($(i + 1) == suite) { print $i; exit }
                }' "$f")
            [ -n "$uri" ] && break
        done
    fi
    [ -n "$uri" ] || return 1
    echo "${uri%/}"
}

# img_json_str STRING: STRING as a JSON string literal.
img_json_str()
{
    printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/\t/\\t/g' | awk '
        BEGIN { printf "\"" } { if (NR > 1) printf "\\n"; printf "%s", $0 } END { printf "\"" }'
}

# img_docker_archive OUT ROOTFS CONFIG_JSON CREATED_BY TAG...
#   OUT         the tarball to write (atomically: OUT.tmp then rename)
#   ROOTFS      directory holding the image's root filesystem (one layer)
#   CONFIG_JSON the body of the image config's "config" object, e.g.
#               '"Cmd":["/bin/sh"],"Env":["PATH=/bin"]'
#   CREATED_BY  a line for the history entry
#   TAG...      names for RepoTags, e.g. nginx:1.14.2 nginx:latest
# The environment may set IMG_MTIME (seconds since the epoch) for a
# reproducible archive: every file time and the "created" date then use it,
# so the same input gives the same image id.
img_docker_archive()
{
    local out=$1 rootfs=$2 config=$3 created_by=$4
    shift 4
    local work created diff cfg tags t tarflags
    work=$(mktemp -d "${out%/*}/.build.XXXXXX") || return 1
    tarflags="--numeric-owner --sort=name"
    if [ -n "${IMG_MTIME:-}" ]; then
        tarflags="$tarflags --mtime=@$IMG_MTIME"
        created=$(date -u -d "@$IMG_MTIME" +%Y-%m-%dT%H:%M:%SZ)
    else
        created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    fi
    mkdir "$work/layer"
    # Members named "bin/...", not "./bin/...", as `docker save` writes them.
    (cd "$rootfs" && ls -A | LC_ALL=C sort | tar $tarflags -cf "$work/layer/layer.tar" -T -) || {
        rm -rf "$work"
        return 1
    }
    diff=$(sha256sum "$work/layer/layer.tar" | cut -d' ' -f1)
    mv "$work/layer" "$work/$diff"
    printf '{"architecture":"%s","os":"linux","created":"%s","config":{%s},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created":"%s","created_by":%s}]}' \
        "$(img_arch)" "$created" "$config" "$diff" "$created" "$(img_json_str "$created_by")" \
        >"$work/config.json"
    cfg=$(sha256sum "$work/config.json" | cut -d' ' -f1)
    mv "$work/config.json" "$work/$cfg.json"
    tags=
    for t in "$@"; do
        tags="$tags${tags:+,}$(img_json_str "$t")"
    done
    printf '[{"Config":"%s.json","RepoTags":[%s],"Layers":["%s/layer.tar"]}]\n' "$cfg" "$tags" "$diff" \
        >"$work/manifest.json"
    tar -C "$work" $tarflags --owner=0 --group=0 -cf "$out.tmp" manifest.json "$cfg.json" "$diff" || {
        rm -rf "$work" "$out.tmp"
        return 1
    }
    mv "$out.tmp" "$out"
    rm -rf "$work"
    img_say "wrote $out ($(du -h "$out" | cut -f1), image sha256:$cfg, $*)"
}

# Parses the common options of the build scripts: -f (rebuild even if
# cached), -o FILE (output tarball). Sets IMG_FORCE and IMG_OUT.
img_opts()
{
    IMG_FORCE=0
    IMG_OUT=$IMG_CACHE/$1.tar
    shift
    while [ $# -gt 0 ]; do
        case $1 in
        -f | --force) IMG_FORCE=1 ;;
        -o | --output)
            [ $# -ge 2 ] || img_die "$1 needs a file name"
            IMG_OUT=$2
            shift
            ;;
        -h | --help)
            echo "usage: ${0##*/} [-f] [-o FILE]   (default FILE: $IMG_OUT)"
            exit 0
            ;;
        *) img_die "unknown option '$1' (try --help)" ;;
        esac
        shift
    done
    mkdir -p "$(dirname "$IMG_OUT")" || img_die "cannot create $(dirname "$IMG_OUT")"
    # One build of an output at a time (parallel test runs share the cache):
    # a second caller waits, then finds the result cached.
    IMG_LOCK=$(dirname "$IMG_OUT")/.$(basename "$IMG_OUT").lock
    exec 9>"$IMG_LOCK" || img_die "cannot create $IMG_LOCK"
    flock 9 || img_die "cannot lock $IMG_LOCK"
}

# Unmounts anything left mounted under DIR (debootstrap mounts /proc and /sys
# in its target; an interrupted run can leave them) and kills processes whose
# root is inside DIR (package scripts may start daemons in the chroot).
img_release_dir()
{
    local dir m p root
    dir=$(readlink -f "$1")
    for p in /proc/[0-9]*; do
        root=$(readlink "$p/root" 2>/dev/null) || continue
        case $root in
        "$dir" | "$dir"/*) kill -9 "${p#/proc/}" 2>/dev/null || true ;;
        esac
    done
    awk '{print $5}' /proc/self/mountinfo | { grep -E "^$dir(/|$)" || true; } | sort -r |
        while read -r m; do
            umount -l "$m" 2>/dev/null || true
        done
}

# img_debootstrap DIR [--include=PKGS]: a minbase bookworm rootfs in DIR from
# the machine's apt mirror, trimmed the way Debian's docker images are.
img_debootstrap()
{
    local dir=$1 mirror
    shift
    command -v debootstrap >/dev/null || img_die "debootstrap is not installed (apt-get install debootstrap)"
    mirror=$(img_mirror bookworm) || img_die "no Debian bookworm mirror in /etc/apt/sources.list(.d): cannot debootstrap"
    img_say "debootstrap --variant=minbase $* bookworm from $mirror (about a minute)"
    rm -rf "$dir"
    mkdir -p "$dir"
    if ! debootstrap --variant=minbase "$@" bookworm "$dir" "$mirror" >"$dir.log" 2>&1; then
        img_release_dir "$dir"
        tail -n 5 "$dir.log" >&2
        img_die "debootstrap failed (full log: $dir.log)"
    fi
    img_release_dir "$dir"
    # As Debian's docker images: no package caches, apt lists, logs or host
    # identity; /dev, /proc, /sys empty (the runtime mounts them).
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/cache/apt/*.bin \
        "$dir"/var/lib/apt/lists/* "$dir"/var/log/*.log "$dir"/var/log/apt/* \
        "$dir"/dev/* "$dir"/proc/* "$dir"/sys/* "$dir"/tmp/* "$dir"/var/tmp/* \
        "$dir"/debootstrap "$dir"/run/*.pid
    : >"$dir/etc/hostname"
    : >"$dir/etc/resolv.conf"
    printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$dir/etc/hosts"
    rm -f "$dir.log"
}
