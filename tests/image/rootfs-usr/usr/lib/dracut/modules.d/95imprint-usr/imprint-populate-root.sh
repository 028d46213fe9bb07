#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# populate-root ROOT FACTORY_ETC: what a usr-only Debian needs on its root partition. Idempotent:
# runs on every boot and only adds what is missing (cp -n: never overwrites a file).
set -eu
root=$1 factory=$2
for l in bin sbin lib lib64; do
        [ -e "$root/$l" ] || [ -L "$root/$l" ] || ln -s "usr/$l" "$root/$l"
done
for d in etc var home srv mnt opt media boot efi proc sys dev run usr; do
        [ -e "$root/$d" ] || mkdir -m 0755 "$root/$d"
done
[ -e "$root/root" ] || mkdir -m 0700 "$root/root"
[ -e "$root/tmp" ] || mkdir -m 1777 "$root/tmp"
if [ -d "$factory" ]; then
        cp -a -n "$factory/." "$root/etc/"
fi
