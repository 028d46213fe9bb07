/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

typedef enum TerminalKind {
        TERMINAL_VIRTUAL_CONSOLE,   /* /dev/tty1…63: the Linux console on a screen */
        TERMINAL_PSEUDO,            /* /dev/pts/N: a terminal emulator, ssh, tmux */
        TERMINAL_LINE,              /* anything else: a serial port, a virtio or hypervisor console */
} TerminalKind;

/* What kind of terminal fd is (a terminal is assumed). */
TerminalKind terminal_kind(int fd);

/* On a virtual console, switch output and keyboard to UTF-8, as systemd-vconsole-setup does: a
 * console left in byte mode draws each byte of "•" as a glyph of its own, and the full-screen
 * installer's rows drift right. Does nothing on other terminals. */
int terminal_vt_set_utf8(int fd);

/* A serial line has no size until someone sets one (stty rows/cols, systemd's TTYRows=): when
 * fd's window size is 0x0, ask the terminal at the other end with the cursor-position report
 * (move to 999;999, then CSI 6n; a real terminal stops at its last cell and answers
 * CSI ROW;COL R), waiting at most timeout_ms, and set what it answers, else 80x24. Returns 1
 * when the size came from the terminal, 0 when it was known already or the default was set,
 * a negative errno on failure. */
int terminal_fix_size(int fd, int timeout_ms);
