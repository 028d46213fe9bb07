/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The image's own systemd-repart and systemd-sysupdate definitions (repart.d(5), sysupdate.d(5)),
 * read as far as imprint uses them: which partitions the installed system expects (A and B slots
 * and their sizes, root and home and their filesystems) and how sysupdate names what it installs
 * (MatchPattern=). The files come from the image, so anything malformed is a refusal naming the
 * file, never a crash.
 *
 * The syntax is systemd's unit-file syntax as far as these files use it: "[Section]" lines,
 * "Key=Value" lines, comments starting with '#' or ';', blank lines. Unknown sections and keys
 * are ignored (systemd warns about them and goes on, and so does imprint). Not supported: line
 * continuations with a trailing backslash, drop-in directories (NAME.conf.d/), and systemd's
 * specifiers in Label= other than %A (IMAGE_VERSION) and %% — others are kept verbatim (imprint
 * only compares Label= with "_empty"). */

#include "image.h"

/* Parses the text of one repart.d file. image_version expands %A in Label=. */
int image_repart_def_parse(const char *file, const char *text, const char *image_version, ImageRepartDef *ret);
void image_repart_def_done(ImageRepartDef *d);

/* Parses the text of one sysupdate.d transfer file. */
int image_transfer_parse(const char *file, const char *text, ImageTransfer *ret);
void image_transfer_done(ImageTransfer *t);

/* repart's Type= and sysupdate's MatchPartitionType= value: "usr", "usr-verity", "usr-x86-64",
 * "usr-x86-64-verity-sig", "root", "esp", … or a type GUID; the architecture suffix, if any, is
 * dropped. _ROLE_INVALID for what imprint does not know. */
PartitionRole image_defs_parse_type(const char *s);

/* The size a slot of this role gets on the target from the image's repart.d: the B definition's
 * (Label=_empty) SizeMinBytes capped by its SizeMaxBytes, else the A definition's, else 0. */
uint64_t image_defs_slot_size(const ImageRepartDef *defs, size_t n, PartitionRole role);

/* The first definition of a role (the A slot; for root and home the only one), or NULL. */
const ImageRepartDef *image_defs_find(const ImageRepartDef *defs, size_t n, PartitionRole role);
