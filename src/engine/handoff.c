/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* STUB: the hand-off helper replaces this file. */
#include "handoff.h"
