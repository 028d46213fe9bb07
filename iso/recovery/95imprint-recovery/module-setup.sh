#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# dracut module of imprint's recovery initrd (iso/build-live.sh builds it with
# iso/recovery/dracut.conf): imprint, what it runs and dlopen()s during a factory reset, and the
# units that run it (imprint-recovery.target, from data/units/ as installed in the live root).
# Libraries of binaries are resolved by dracut-install; the ones loaded at run time are named.

# Only when asked for by name (add_dracutmodules): never in the live medium's own initrd.
check() {
        return 255
}

depends() {
        echo systemd
        return 0
}

# dm_crypt (dm_mod comes with it as a dependency). Modules loaded at run time, not through a
# driver's dependencies: the TPM (tpm_tis, tpm_crb);
# the ciphers of a LUKS2 volume (aes-xts-plain64; the kernel asks for them by algorithm name) and
# the AF_ALG sockets libcryptsetup uses for the keyslot area. Built-in ones are skipped.
installkernel() {
        local m
        hostonly='' instmods dm_crypt
        for m in tpm_tis tpm_crb xts aesni_intel aes_generic cbc ecb sha256_generic sha512_generic \
                af_alg algif_skcipher algif_hash; do
                hostonly='' instmods "$m" || dwarn "imprint-recovery: kernel module $m not found"
        done
}

install() {
        local f t d

        inst_binary /usr/bin/imprint

        # What a reset runs: partition table and probes, LUKS2, filesystems (formats imprint
        # creates or an image's repart.d names), the ESP without mounting (mtools), reading a usr
        # partition's repart.d (squashfs, erofs), the first-boot settings and credentials, and the
        # account (useradd/chpasswd --root).
        inst_multiple sfdisk blkid wipefs blkdiscard losetup mount umount \
                cryptsetup \
                mkfs.ext4 mke2fs e2fsck resize2fs tune2fs debugfs \
                mkfs.vfat fsck.fat mcopy mmd mdir mtype mdel \
                systemd-creds systemd-firstboot
        inst_multiple -o mkfs.btrfs btrfs mkfs.xfs xfs_repair xfs_growfs \
                unsquashfs dump.erofs useradd chpasswd usermod groupadd

        # device-mapper without dracut's "dm" module (iso/recovery/dracut.conf says why): udev
        # must tell libdevmapper that a volume's node is there, or opening it waits for a timeout.
        inst_multiple dmsetup
        inst_rules 10-dm.rules 13-dm-disk.rules 55-dm.rules 60-persistent-storage-dm.rules 95-dm-notify.rules

        # dlopen()ed: tpm2-tss's TCTI loader opens the device TCTI by name; libcryptsetup's token
        # plugins (systemd-tpm2 unlocks a kept home by its TPM2 token when re-enrolling it).
        inst_libdir_file "libtss2-tcti-device.so*"
        inst_libdir_file -o "cryptsetup/libcryptsetup-token-systemd-tpm2.so"
        # mtools converts FAT names through iconv (codepage 850): glibc's gconv modules.
        inst_libdir_file "gconv/gconv-modules" "gconv/gconv-modules.cache" "gconv/gconv-modules.d/*.conf" "gconv/IBM850.so"

        # ncurses: the terminals systemd gives the consoles ("linux", "vt220") and common
        # overrides (systemd.tty.term.ttyS0=).
        for t in linux vt220 vt102 vt100 xterm xterm-256color screen dumb; do
                for d in /usr/share/terminfo /lib/terminfo /usr/lib/terminfo /etc/terminfo; do
                        if [[ -f $d/${t:0:1}/$t ]]; then
                                inst_simple "$d/${t:0:1}/$t"
                                break
                        fi
                done
        done
        # The full-screen front end draws with wide characters: LANG=C.UTF-8 (the units set it).
        if [[ -d /usr/lib/locale/C.utf8 ]]; then
                while IFS= read -r -d '' f; do
                        inst_simple "$f"
                done < <(find /usr/lib/locale/C.utf8 -type f -print0)
        fi
        # imprint's translations.
        while IFS= read -r -d '' f; do
                inst_simple "$f"
        done < <(find /usr/share/locale -name imprint.mo -print0 2>/dev/null)

        for f in imprint-recovery.target imprint-recovery@.service imprint-recovery-unattended.service \
                imprint-recovery@ttyS0.service.d/10-serial.conf; do
                inst_simple "$systemdsystemunitdir/$f"
        done
}
