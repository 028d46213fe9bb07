/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The failure screen: what failed (the step and the engine's sentence), what state the disk is
 * in (untouched when no step that writes began), where the log is; retry, save the log to a USB
 * stick, go back to change the choices, or quit. */

#include <curses.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "fileio.h"
#include "run.h"
#include "ui.h"

static bool fstype_takes_log(const char *fs) {
        return streq_ptr(fs, "vfat") || streq_ptr(fs, "exfat") || streq_ptr(fs, "ext4") || streq_ptr(fs, "ext3") ||
               streq_ptr(fs, "ext2") || streq_ptr(fs, "btrfs") || streq_ptr(fs, "xfs");
}

static int copy_file(const char *from, const char *to) {
        _cleanup_(freep) char *text = NULL;
        size_t size = 0;
        int r;

        r = read_full_file(from, &text, &size);
        if (r < 0)
                return r;
        _cleanup_(closep) int fd = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        for (size_t done = 0; done < size;) {
                ssize_t k = write(fd, text + done, size - done);
                if (k < 0)
                        return -errno;
                done += (size_t) k;
        }
        return fsync(fd) < 0 ? -errno : 0;
}

/* Mounts the first filesystem on a removable disk (never the target) that can take a file, copies
 * the log there, and unmounts. */
static int save_log_to_usb(Tui *t, char *where, size_t size) {
        DiskList l = {};
        int r;

        if (t->log)
                fflush(t->log);
        r = disk_list_discover(&(DiscoverOptions) { .probe_os = false }, &l);
        if (r < 0)
                return r;
        r = error_setf(-ENODEV, "%s", _("No USB stick with a FAT, exFAT or ext4 filesystem was found. Plug one in and try again."));
        for (size_t i = 0; i < l.n_disks && r == -ENODEV; i++) {
                const Disk *d = l.disks[i];

                if (!(d->removable || d->transport == TRANSPORT_USB) || (t->disk && streq_ptr(d->path, t->disk->path)))
                        continue;
                for (size_t j = 0; j < d->n_partitions && r == -ENODEV; j++) {
                        const DiskPartition *pp = &d->partitions[j];
                        char dir[] = "/tmp/imprint-usb.XXXXXX", name[64], dest[256];
                        char *mount_argv[] = { (char *) "mount", pp->node, dir, NULL };
                        char *umount_argv[] = { (char *) "umount", dir, NULL };
                        time_t now = time(NULL);
                        struct tm tm;

                        if (!pp->node || !fstype_takes_log(pp->fstype) || !mkdtemp(dir))
                                continue;
                        if (run_command(mount_argv, &(RunOptions) { .quiet_stderr = true }) < 0) {
                                rmdir(dir);
                                continue;
                        }
                        localtime_r(&now, &tm);
                        strftime(name, sizeof(name), "imprint-%Y%m%d-%H%M%S.log", &tm);
                        snprintf(dest, sizeof(dest), "%s/%s", dir, name);
                        if (copy_file(t->log_path, dest) >= 0) {
                                /* TRANSLATORS: first %s is the file name, second the partition (/dev/sdb1). */
                                snprintf(where, size, _("The log was saved as %s on %s."), name, pp->node);
                                r = 0;
                        }
                        (void) run_command(umount_argv, &(RunOptions) { .quiet_stderr = true });
                        rmdir(dir);
                }
        }
        disk_list_done(&l);
        return r;
}

UiNext screen_failure(Tui *t, const Plan *p, const char *message) {
        const char *items[] = { N_("Retry the install"), N_("Save the log to a USB stick"), N_("Back: change the choices"),
                                N_("Quit") };
        size_t sel = 0;
        char note[512] = "";

        t->help = N_("Retry runs the same install again (the summary is shown again first). The log records every step and "
                     "every command that ran; save it to a USB stick to report the problem.");
        for (;;) {
                char line[2048];
                /* Rows for the engine's message: fewer when the choices would not fit above the
                 * note (rows LINES-3 and LINES-2) otherwise; the log has the whole message. */
                int message_rows = MAX(LINES - 16, 5);
                UiKey k;

                while (ui_frame(t, _("The install failed"), 0, _("F1 Help  Up/Down Choose  Enter Select"))) {
                        int y = 2, w = 40, drawn;
                        curs_set(0);
                        ui_text(y++, 2, COLS - 4, ui_attr_error(), _("The install failed."));
                        y++;
                        if (t->failed_step) {
                                /* TRANSLATORS: %s is the step (English, from the engine). */
                                snprintf(line, sizeof(line), _("What failed: %s"), t->failed_step);
                                y += ui_wrap(y, 2, COLS - 4, 2, A_BOLD, line);
                        }
                        drawn = ui_wrap(y, 2, COLS - 4, message_rows, 0, message);
                        y += drawn;
                        y++;
                        if (!t->wrote)
                                /* TRANSLATORS: %s is the target's path. */
                                snprintf(line, sizeof(line), _("The disk: nothing was written to %s; it is as it was."), p->target);
                        else if (p->mode == PLAN_ERASE)
                                snprintf(line, sizeof(line),
                                         _("The disk: %s was partly written. What was on it before is gone, and it does not start "
                                           "a system yet. Retry installs it again."),
                                         p->target);
                        else
                                snprintf(line, sizeof(line),
                                         _("The disk: new partitions were written to the free space of %s; the partitions that "
                                           "were there are kept. The new system does not start yet. Retry installs it again."),
                                         p->target);
                        y += ui_wrap(y, 2, COLS - 4, 3, A_BOLD, line);
                        snprintf(line, sizeof(line), _("The log of this install: %s"), t->log_path ?: "-");
                        y += ui_wrap(y, 2, COLS - 4, 2, 0, line);
                        y++;
                        if (y + (int) ELEMENTSOF(items) > LINES - 3 && message_rows > 2) {
                                message_rows = MAX(drawn - (y + (int) ELEMENTSOF(items) - (LINES - 3)), 2);
                                continue;
                        }
                        /* 40 columns, or what a translation needs ("Enregistrer le journal sur une clé
                         * USB" was cut at 40). */
                        for (size_t i = 0; i < ELEMENTSOF(items); i++)
                                w = MAX(w, ui_width(_(items[i])) + 4);
                        for (size_t i = 0; i < ELEMENTSOF(items) && y < LINES - 2; i++, y++)
                                ui_radio(t, y, 4, MIN(w, COLS - 6), _(items[i]), i == sel, i == sel, false);
                        if (note[0])
                                ui_wrap(LINES - 3, 2, COLS - 4, 2, ui_attr_dim(), note);
                        break;
                }
                refresh();
                k = ui_key(t);
                if (ui_key_is(k, UI_KEY_ESC))
                        return UI_BACK;
                if (ui_key_is(k, KEY_UP) && sel > 0)
                        sel--;
                else if (ui_key_is(k, KEY_DOWN) && sel + 1 < ELEMENTSOF(items))
                        sel++;
                else if (ui_key_is(k, UI_KEY_ENTER)) {
                        switch (sel) {
                        case 0:
                                return UI_NEXT;
                        case 1: {
                                int r;
                                ui_frame(t, _("The install failed"), 0, "");
                                ui_text(2, 2, COLS - 4, 0, _("Looking for a USB stick…"));
                                refresh();
                                r = save_log_to_usb(t, note, sizeof(note));
                                if (r < 0)
                                        snprintf(note, sizeof(note), "%s", error_message() ?: strerror(-r));
                                break;
                        }
                        case 2:
                                return UI_BACK;
                        default:
                                return UI_QUIT;
                        }
                }
        }
}
