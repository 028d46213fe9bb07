#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-fresh-tree.sh — proves that scripts/deps makes a fresh Debian 12 machine able to build
# imprint and pass its unit tests. What the developer's machine happens to have does not count:
#
#   1. tree    a minimal Debian 12 (bookworm, debootstrap --variant=minbase) tree, cached in
#              $IMPRINT_TEST_CACHE/fresh-KEY/root (default /var/cache/imprint-test), KEY from the
#              suite, the mirrors, the variant and the code below that builds the tree
#              (build_tree and the lib-debian.sh functions it calls). Built once, under the
#              cache lock (tests/image/lib-debian.sh), from the shared debootstrap tarball.
#   2. copy    the cached tree is copied for this run (cp --reflink=auto -a: it stays pristine),
#              and a clean checkout of the source goes in: `git archive HEAD` of $SOURCE_ROOT,
#              so uncommitted files in the working tree do not count (CI runs on a fresh clone).
#   3. deps    scripts/deps runs inside the chroot: apt-get update and install there, from the
#              Debian mirror the host's apt uses. The .debs the host has already (its apt cache
#              and the image builds' shared one) are hard-linked into the tree's apt cache first,
#              and what apt downloaded is linked back into the shared one.
#   4. build   WERROR=1 scripts/build inside the chroot.
#   5. unit    meson test --suite unit inside the chroot. A skipped unit test, or one that says a
#              tool "is not installed", fails this test: in a tree made by scripts/deps alone,
#              every dependency must be there.
#
# Every chroot command runs in a private mount namespace with /proc, /sys, /dev (and /dev/pts),
# a tmpfs /run and /tmp (lib-debian.sh's in_root), so the kernel drops those mounts when the
# command ends. The tree's root is bind-mounted onto itself (a mount point, as / is); the exit
# trap unmounts that and anything else below the run's directory before it removes it. Each
# phase prints its time.
#
# Environment: SOURCE_ROOT (the checkout; default: this script's), IMPRINT_TEST_CACHE,
# IMPRINT_TEST_CACHE_KEEP, IMPRINT_TEST_MIRROR and IMPRINT_TEST_SECURITY_MIRROR (default: the
# host's apt sources for bookworm, else deb.debian.org), IMPRINT_TEST_VERBOSE=1 (stream apt and
# the build to stderr, not only to the log), IMPRINT_TEST_KEEP_TREE=1 (keep the run's tree, to
# look inside after a failure). Needs root (debootstrap, chroot); skips (77)
# without root or when SOURCE_ROOT is not a git checkout.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SOURCE_ROOT=${SOURCE_ROOT:-$(cd "$HERE/../.." && pwd)}
SUITE=bookworm
VARIANT=minbase
CACHE=${IMPRINT_TEST_CACHE:-/var/cache/imprint-test}
KEEP=${IMPRINT_TEST_CACHE_KEEP:-3}
LIB_TAG=fresh-tree
# shellcheck source-path=SCRIPTDIR source=../image/lib-debian.sh
. "$HERE/../image/lib-debian.sh"

if [ "$(id -u)" != 0 ]; then
        echo "SKIP: the fresh-tree test needs root (debootstrap, chroot)" >&2
        exit 77
fi
if ! git -C "$SOURCE_ROOT" rev-parse --verify -q HEAD >/dev/null 2>&1; then
        echo "SKIP: $SOURCE_ROOT is not a git checkout; the fresh tree gets a clean 'git archive HEAD'" >&2
        exit 77
fi
for tool in debootstrap unshare flock findmnt; do
        command -v "$tool" >/dev/null || die "$tool is not installed (scripts/deps installs it)"
done

# host_mirror SUITE: the first Debian mirror the host's apt sources (one-line or deb822) use for
# SUITE, or nothing.
host_mirror() {
        local suite=$1
        {
                cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
                        | sed -e 's/#.*//' -e 's/\[[^]]*\]//' \
                        | awk -v s="$suite" '$1 == "deb" && $3 == s { print $2 }'
                cat /etc/apt/sources.list.d/*.sources 2>/dev/null \
                        | awk -v s="$suite" '
                                function flush() {
                                        if (deb && uris != "" && (" " suites " ") ~ (" " s " ")) { split(uris, u, " "); print u[1] }
                                        deb = 0; uris = ""; suites = ""
                                }
                                /^[ \t]*$/ { flush(); next }
                                /^#/ { next }
                                tolower($1) == "types:" { deb = (" " $0 " ") ~ / deb / }
                                tolower($1) == "uris:" { sub(/^[^:]*:[ \t]*/, ""); uris = $0 }
                                tolower($1) == "suites:" { sub(/^[^:]*:[ \t]*/, ""); suites = $0 }
                                END { flush() }'
        } | head -n 1
}

MIRROR=${IMPRINT_TEST_MIRROR:-$(host_mirror "$SUITE")}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${IMPRINT_TEST_SECURITY_MIRROR:-$(host_mirror "$SUITE-security")}
SECURITY_MIRROR=${SECURITY_MIRROR:-http://deb.debian.org/debian-security}

# build_tree: the cached part, in $ROOT: minbase, the apt sources of this test, no daemons
# started and no documentation unpacked (faster dpkg), the package lists and a dist-upgrade.
build_tree() {
        phase debootstrap
        deb_debootstrap
        phase prepare
        rm -f "$ROOT/etc/apt/sources.list"
        cat >"$ROOT/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY_MIRROR
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
        cat >"$ROOT/etc/dpkg/dpkg.cfg.d/01-imprint-fresh" <<'EOF'
# imprint's fresh-tree test: no documentation (only speed; nothing builds or tests from it).
path-exclude=/usr/share/doc/*
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
EOF
        printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
        chmod 755 "$ROOT/usr/sbin/policy-rc.d"
        deb_apt update
        deb_apt dist-upgrade
        rm -f "$ROOT/etc/resolv.conf"
        phase end
}

cache_key_input() {
        echo "suite $SUITE"
        echo "variant $VARIANT"
        echo "mirror $MIRROR"
        echo "security $SECURITY_MIRROR"
        echo "debootstrap $(dpkg-query -W -f='${Version}' debootstrap 2>/dev/null || echo unknown)"
        declare -f build_tree deb_debootstrap deb_apt in_root
}
KEY_FULL=$(cache_key_input | sha256sum | cut -d' ' -f1)
KEY=${KEY_FULL:0:16}
RESULT=$CACHE/fresh-$KEY
log "suite $SUITE ($VARIANT), mirror $MIRROR, security $SECURITY_MIRROR; cache $RESULT"

# ---- 1. the tree, unless cached ------------------------------------------------------------------
phase tree
if [ ! -f "$RESULT/complete" ]; then
        deb_lock
        if [ ! -f "$RESULT/complete" ]; then
                (
                        deb_begin_build
                        # shellcheck disable=SC2030  # the subshell's own phases
                        PHASE='' TIMINGS=()
                        log "building the $SUITE $VARIANT tree (key $KEY) in $WORK; log: $BUILDLOG"
                        build_tree
                        mkdir -p "$OUT"
                        mv "$ROOT" "$OUT/root"
                        printf '%s\n' "${TIMINGS[@]}" >"$OUT/build-info.txt"
                        deb_finish fresh
                )
        fi
        exec 9>&-
fi
[ -f "$RESULT/complete" ] || die "no complete tree in $RESULT"

# ---- the run's own copy, and its cleanup ---------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/imprint-fresh.XXXXXX")
ROOT=$WORK/root
BUILDLOG=$WORK/run.log
: >"$BUILDLOG"
if [ "${IMPRINT_TEST_KEEP_TREE:-0}" = 1 ]; then
        # For a look inside after a failure: chroot $ROOT (mount /proc, /sys, /dev first).
        trap 'rc=$?; umount "$ROOT" 2>/dev/null; log "kept the tree: $ROOT"; exit $rc' EXIT
else
        trap deb_cleanup EXIT
fi
trap 'exit 130' INT TERM HUP

phase copy
cp --reflink=auto -a "$RESULT/root" "$ROOT"
# The network configuration every installed Debian has: the host's resolver, and the /etc/hosts
# the installer writes (debootstrap writes none; without it "localhost" does not resolve, and
# swtpm's TCTI cannot connect).
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$ROOT/etc/hosts"
# The tree's root is a mount point, as / is on a machine: unshare --propagation private (the
# unit tests' token-plugin check) fails on a chroot whose root is not one. The exit trap
# unmounts it.
mount --bind "$ROOT" "$ROOT"
commit=$(git -C "$SOURCE_ROOT" rev-parse HEAD)
git -C "$SOURCE_ROOT" archive --format=tar --prefix=imprint/ HEAD | tar -x -C "$ROOT/root"
log "source: $SOURCE_ROOT at $commit (git archive HEAD)"

# ---- 2. scripts/deps in the chroot ---------------------------------------------------------------
phase deps
# The .debs the host already has (its apt cache and the image builds' shared one) are hard-linked
# into the tree's own apt cache: apt there downloads only what they lack, and needs no lock shared
# with anyone. link(2) is atomic, and neither apt nor dpkg writes to a .deb in place, so the
# host's files stay as they are. On another filesystem nothing is linked, and apt downloads.
archives=$ROOT/var/cache/apt/archives
mkdir -p "$archives/partial"
for d in /var/cache/apt/archives "$CACHE/apt-archives"; do
        [ -d "$d" ] || continue
        find "$d" -maxdepth 1 -name '*.deb' -type f -exec cp -ln -t "$archives" {} + 2>/dev/null || true
done
log "$(find "$archives" -maxdepth 1 -name '*.deb' | wc -l) .debs of the host linked into the tree's apt cache"
logged in_root bash -c 'cd /root/imprint && scripts/deps' \
        || die "scripts/deps failed in a fresh $SUITE tree"
# What apt had to download goes to the shared cache for the next run (same atomic links).
find "$archives" -maxdepth 1 -name '*.deb' -type f -links 1 -exec cp -ln -t "$CACHE/apt-archives" {} + 2>/dev/null || true

# ---- 3. the build --------------------------------------------------------------------------------
phase build
logged in_root bash -c 'cd /root/imprint && WERROR=1 scripts/build' \
        || die "scripts/build failed in a fresh $SUITE tree with what scripts/deps installed"

# ---- 4. the unit tests ---------------------------------------------------------------------------
phase unit
rc=0
in_root bash -c 'cd /root/imprint && meson test -C build --suite unit --print-errorlogs' 2>&1 | tee -a "$BUILDLOG" || rc=$?
[ "$rc" = 0 ] || die "the unit tests failed in a fresh $SUITE tree (exit $rc)"
testlog=$ROOT/root/imprint/build/meson-logs/testlog.json
[ -s "$testlog" ] || die "meson wrote no $testlog"
skipped=$(jq -r 'select(.result == "SKIP") | .name' "$testlog")
[ -z "$skipped" ] || die "unit tests were skipped in the fresh tree (a dependency scripts/deps does not install?): $(echo "$skipped" | tr '\n' ' ')"
untooled=$(jq -r 'select(.stdout != null) | .name as $n | .stdout | split("\n")[] | select(test("is not installed|not found, skipping")) | "\($n): \(.)"' "$testlog")
[ -z "$untooled" ] || die "unit tests ran without a tool scripts/deps does not install: $untooled"
n=$(jq -s 'map(select(.result == "OK")) | length' "$testlog")
[ "$n" -gt 0 ] || die "no unit test ran"

phase end
# shellcheck disable=SC2031  # the parent's phases, not the tree build's
log "fresh $SUITE tree: scripts/deps, scripts/build and $n unit tests passed; phases: ${TIMINGS[*]}"
