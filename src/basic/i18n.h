/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Marks for the sentences people read: disk refusals, plan notes, step titles, error messages.
 * _() translates now; N_() only marks a string for xgettext (for tables), and _() translates it
 * where it is shown. The catalog is the text domain "imprint" (po/), which only the interactive
 * front ends bind (src/i18n-frontend.c: the full-screen installer and the line-by-line dialogue):
 * elsewhere (the command line, the unattended install, the tests) gettext() finds no catalog and
 * returns the English sentence unchanged.
 *
 * Never mark what machines read: JSON keys and values, step ids, event names, files written to
 * the target, the escrowed recovery key file, log-only lines. The definitions are the same as
 * ui/ui.h's, so that a file may include both. */

#include <libintl.h>

#ifndef _
#define _(s) gettext(s)
#endif
#ifndef N_
#define N_(s) (s)
#endif
