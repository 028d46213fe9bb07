#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# dracut module of imprint's usr test image: imprint-populate-root.service, which makes an empty
# root usable before initrd-parse-etc.service reads /sysroot/etc/fstab.

check() {
        return 255      # only when asked for (add_dracutmodules)
}

depends() {
        echo systemd
}

install() {
        inst_multiple cp ln mkdir chmod
        inst_script "$moddir/imprint-populate-root.sh" /usr/lib/imprint-usr/populate-root
        inst_simple "$moddir/imprint-populate-root.service" "$systemdsystemunitdir/imprint-populate-root.service"
        $SYSTEMCTL -q --root "$initdir" add-wants initrd-root-fs.target imprint-populate-root.service
}
