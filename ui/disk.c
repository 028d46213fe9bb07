/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Screen 2: the disks, as `imprint disks` describes them. Disks that cannot be a target are shown
 * dimmed with the engine's reason and cannot be chosen. */

#include <curses.h>
#include <stdlib.h>
#include <string.h>

#include "size.h"
#include "ui.h"

/* The lines one disk takes: its facts, then what is on it or why it cannot be used. */
static int draw_disk(Tui *t, int y, int ymax, const Disk *d, bool selected) {
        bool usable = disk_is_usable(d);
        int a = !usable ? ui_attr_dim() : selected ? ui_attr_focus() : 0;
        char line[512];
        int rows = 1;

        snprintf(line, sizeof(line), "%s %-18s %10s  %-6s %s%s%s", selected ? ">" : " ", d->path, FORMAT_BYTES(d->size),
                 transport_to_string(d->transport) ?: "?", d->model ?: (d->kind == DISK_IMAGE_FILE ? _("image file") : ""),
                 d->serial ? "  " : "", d->serial ?: "");
        if (y < ymax) {
                if (selected) {
                        attron(a);
                        mvhline(y, 2, ' ', COLS - 4);
                        attroff(a);
                }
                ui_text(y, 2, COLS - 4, a, line);
        }
        if (!usable) {
                /* TRANSLATORS: %s is the engine's reason (translated itself). */
                snprintf(line, sizeof(line), _("cannot be used: %s"), d->refusal_text ?: "");
                if (y + rows < ymax)
                        rows += ui_wrap(y + rows, 6, COLS - 10, ymax - y - rows, ui_attr_dim(), line);
                return rows;
        }
        for (size_t i = 0; d->installed && d->installed[i]; i++, rows++) {
                /* TRANSLATORS: what is installed on a disk; %s names it. */
                snprintf(line, sizeof(line), _("holds: %s"), d->installed[i]);
                if (y + rows < ymax)
                        ui_text(y + rows, 6, COLS - 10, 0, line);
        }
        if (d->n_partitions == 0) {
                if (y + rows < ymax)
                        ui_text(y + rows, 6, COLS - 10, 0, d->pttype ? _("an empty partition table") : _("empty"));
                rows++;
        } else if (!d->installed || !d->installed[0]) {
                /* TRANSLATORS: %zu is a number of partitions, %s the partition table type (gpt, dos). */
                snprintf(line, sizeof(line), ngettext("%zu partition (%s), no operating system found", "%zu partitions (%s), no operating system found",
                                                      d->n_partitions),
                         d->n_partitions, d->pttype ?: "?");
                if (y + rows < ymax)
                        ui_text(y + rows, 6, COLS - 10, 0, line);
                rows++;
        }
        return rows;
}

UiNext screen_disk(Tui *t) {
        const DiskList *disks = session_disks(t->session);
        size_t sel = 0;
        bool need_scan = disks->n_disks == 0;

        for (size_t i = 0; i < disks->n_disks; i++)
                if (disks->disks[i] == t->disk)
                        sel = i;

        t->help = N_("Every disk of this computer is listed with its size, bus, model and what is on it. Disks that cannot "
                     "be installed to are dimmed, with the reason. F5 looks for disks again (after plugging one in).");

        for (;;) {
                UiKey k;
                size_t n_usable = 0;

                if (ui_frame(t, _("Where to install"), 2, _("F1 Help  Up/Down Choose  F5 Rescan  Enter Continue  Esc Back"))) {
                        if (need_scan) {
                                int r;

                                ui_text(2, 2, COLS - 4, 0, _("Looking for disks…"));
                                refresh();
                                t->disk = NULL;
                                r = session_discover(t->session, true);
                                need_scan = false;
                                if (r < 0) {
                                        ui_message(t, _("Error"), session_error_message(r), _("Enter: back"));
                                        return UI_BACK;
                                }
                                /* Keep the previous choice selected, else the first usable disk. */
                                sel = 0;
                                for (size_t i = 0; i < disks->n_disks; i++)
                                        if (disk_is_usable(disks->disks[i])) {
                                                sel = i;
                                                break;
                                        }
                                continue;
                        }
                        for (size_t i = 0; i < disks->n_disks; i++)
                                if (disk_is_usable(disks->disks[i]))
                                        n_usable++;
                        ui_text(2, 2, COLS - 4, A_BOLD, _("Choose the disk to install to."));
                        {
                                /* Scroll so that the selected disk is on screen. */
                                int y = 4, ymax = LINES - 3;
                                size_t first = 0;
                                if (sel > (size_t) (ymax - y) / 3)
                                        first = sel - (size_t) (ymax - y) / 3;
                                for (size_t i = first; i < disks->n_disks && y < ymax; i++)
                                        y += draw_disk(t, y, ymax, disks->disks[i], i == sel && disk_is_usable(disks->disks[i])) + 1;
                        }
                        if (n_usable == 0)
                                ui_wrap(LINES - 3, 2, COLS - 4, 2, ui_attr_error(),
                                        _("No disk here can be installed to. Plug one in and press F5."));
                }
                curs_set(0);
                refresh();
                k = ui_key(t);
                if (ui_key_is(k, UI_KEY_ESC))
                        return UI_BACK;
                if (ui_key_is(k, KEY_F(5)))
                        need_scan = true;
                else if (ui_key_is(k, UI_KEY_ENTER) && sel < disks->n_disks && disk_is_usable(disks->disks[sel])) {
                        if (t->disk != disks->disks[sel]) {
                                /* Another disk: the layout starts over from its defaults. */
                                t->mode = PLAN_ERASE;
                        }
                        t->disk = disks->disks[sel];
                        return UI_NEXT;
                } else if (ui_key_is(k, KEY_UP) || ui_key_is(k, KEY_DOWN)) {
                        bool up = ui_key_is(k, KEY_UP);
                        for (size_t i = sel;;) {
                                if (up ? i == 0 : i + 1 >= disks->n_disks)
                                        break;
                                i = up ? i - 1 : i + 1;
                                if (disk_is_usable(disks->disks[i])) {
                                        sel = i;
                                        break;
                                }
                        }
                }
        }
}
