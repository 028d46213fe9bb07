/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <qrencode.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "i18n.h"
#include "macro.h"
#include "recovery.h"

/* docs/formats.md §3.6: values 0..15 in this order. */
static const char modhex[16] = "cbdefghijklnrtuv";

#define KEY_LETTERS (RECOVERY_KEY_GROUPS * RECOVERY_KEY_GROUP_LENGTH)

#define QR_QUIET_ZONE 4 /* modules of light border on each side (ISO/IEC 18004 §6.3.8) */

/* Offset of letter i (0..63) in the dashed string. */
static size_t letter_offset(size_t i) {
        return i + i / RECOVERY_KEY_GROUP_LENGTH;
}

/* Branch-free ASCII tolower(): upper-case letters become lower case, anything else is unchanged. */
static unsigned char ascii_lower(unsigned char c) {
        unsigned upper = (unsigned) (c - 'A') < 26u;
        return (unsigned char) (c | (upper << 5));
}

/* Branch-free membership test for the modhex alphabet: 1 if c is one of its letters. The letters
 * b..v form a bit mask relative to 'b', so no table indexed by key material is consulted. */
static unsigned is_modhex(unsigned char c) {
        /* b c d e f g h i j k l n r t u v, as bits (c - 'b'). */
        const uint32_t mask = (1u << 0) | (1u << 1) | (1u << 2) | (1u << 3) | (1u << 4) | (1u << 5) |
                              (1u << 6) | (1u << 7) | (1u << 8) | (1u << 9) | (1u << 10) | (1u << 12) |
                              (1u << 16) | (1u << 18) | (1u << 19) | (1u << 20);
        unsigned d = (unsigned) c - 'b';
        unsigned in_range = d < 21u;
        return in_range & (unsigned) (mask >> (d & 31u));
}

/* A key as this module makes it: 71 bytes, dashes in place, modhex letters elsewhere. The check
 * runs over the whole string without branching on its letters. */
static bool key_is_canonical(const Secret *key) {
        unsigned bad = 0;

        if (!key || key->size != RECOVERY_KEY_LENGTH || key->data[RECOVERY_KEY_LENGTH] != 0)
                return false;
        for (size_t i = 0; i < RECOVERY_KEY_LENGTH; i++) {
                unsigned dash_here = (i % (RECOVERY_KEY_GROUP_LENGTH + 1)) == RECOVERY_KEY_GROUP_LENGTH;
                unsigned is_dash = key->data[i] == '-';
                bad |= dash_here ? !is_dash : !is_modhex(key->data[i]);
        }
        return bad == 0;
}

int recovery_key_generate(Secret **ret) {
        _cleanup_(secret_freep) Secret *key = NULL;
        unsigned char bytes[RECOVERY_KEY_BYTES];
        size_t done = 0;

        if (!ret)
                return error_setf(-EINVAL, "No place to return the recovery key.");

        while (done < sizeof(bytes)) {
                ssize_t n = getrandom(bytes + done, sizeof(bytes) - done, 0);
                if (n < 0) {
                        int r = -errno;
                        if (r == -EINTR)
                                continue;
                        secret_wipe(bytes, sizeof(bytes));
                        return error_setf(r, _("Cannot get random bytes for the recovery key: %s"), strerror(-r));
                }
                done += (size_t) n;
        }

        key = secret_new(RECOVERY_KEY_LENGTH);
        if (!key) {
                int r = negative_errno();
                secret_wipe(bytes, sizeof(bytes));
                return error_setf(r, _("Cannot allocate locked memory for the recovery key: %s"), strerror(-r));
        }

        for (size_t i = 0; i < RECOVERY_KEY_BYTES; i++) {
                key->data[letter_offset(2 * i)] = (unsigned char) modhex[bytes[i] >> 4];
                key->data[letter_offset(2 * i + 1)] = (unsigned char) modhex[bytes[i] & 0xf];
        }
        for (size_t g = 1; g < RECOVERY_KEY_GROUPS; g++)
                key->data[g * (RECOVERY_KEY_GROUP_LENGTH + 1) - 1] = '-';
        secret_wipe(bytes, sizeof(bytes));

        *ret = TAKE_PTR(key);
        return 0;
}

static bool is_separator(char c) {
        return c == '-' || c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int recovery_key_normalize(const char *typed, Secret **ret) {
        _cleanup_(secret_freep) Secret *key = NULL;
        size_t n = 0;

        if (!ret)
                return error_setf(-EINVAL, "No place to return the recovery key.");
        if (isempty(typed))
                return error_setf(-EINVAL, _("No recovery key was entered."));

        key = secret_new(RECOVERY_KEY_LENGTH);
        if (!key) {
                int r = negative_errno();
                return error_setf(r, _("Cannot allocate locked memory for the recovery key: %s"), strerror(-r));
        }

        for (const char *p = typed; *p; p++) {
                unsigned char c = (unsigned char) *p;

                if (is_separator(*p))
                        continue;

                c = ascii_lower(c);
                /* Past the 64th letter the length is the problem to report, so only count. */
                if (!is_modhex(c) && n < KEY_LETTERS) {
                        /* Name the one wrong character and where it sits in the key, nothing more. */
                        if ((unsigned char) *p >= 0x21 && (unsigned char) *p < 0x7f)
                                return error_setf(-EINVAL,
                                                  _("The recovery key contains '%c' (group %zu, character %zu), which is not one of its letters: a recovery key uses only c b d e f g h i j k l n r t u v."),
                                                  *p, n / RECOVERY_KEY_GROUP_LENGTH + 1, n % RECOVERY_KEY_GROUP_LENGTH + 1);
                        return error_setf(-EINVAL,
                                          _("The recovery key contains a character that is not one of its letters (group %zu, character %zu): a recovery key uses only c b d e f g h i j k l n r t u v."),
                                          n / RECOVERY_KEY_GROUP_LENGTH + 1, n % RECOVERY_KEY_GROUP_LENGTH + 1);
                }
                if (n < KEY_LETTERS)
                        key->data[letter_offset(n)] = c;
                n++;
        }

        if (n != KEY_LETTERS)
                return error_setf(-EINVAL, _("The recovery key has %zu letters, but it must have %d (8 groups of 8)."),
                                  n, KEY_LETTERS);

        for (size_t g = 1; g < RECOVERY_KEY_GROUPS; g++)
                key->data[g * (RECOVERY_KEY_GROUP_LENGTH + 1) - 1] = '-';

        *ret = TAKE_PTR(key);
        return 0;
}

/* A uniform integer in [0, bound), bound <= 256, by rejection sampling over random bytes. */
static int random_below(unsigned bound, unsigned *ret) {
        unsigned limit = 256u - 256u % bound;

        for (;;) {
                unsigned char b;
                ssize_t n = getrandom(&b, 1, 0);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 1 && b < limit) {
                        *ret = b % bound;
                        return 0;
                }
        }
}

int recovery_key_challenge(unsigned n, unsigned ret_groups[], size_t max) {
        unsigned pool[RECOVERY_KEY_GROUPS], picked[RECOVERY_KEY_GROUPS];
        int r;

        if (!ret_groups)
                return error_setf(-EINVAL, "No place to return the recovery key groups.");
        if (n == 0 || n > RECOVERY_KEY_GROUPS || n > max)
                return error_setf(-EINVAL, "Cannot ask for %u groups of the recovery key: it has %d and room was given for %zu.",
                                  n, RECOVERY_KEY_GROUPS, max);

        for (unsigned i = 0; i < RECOVERY_KEY_GROUPS; i++)
                pool[i] = i + 1;
        /* The first n steps of a Fisher-Yates shuffle: n distinct groups, each subset equally likely. */
        for (unsigned i = 0; i < n; i++) {
                unsigned j = 0, t;

                r = random_below(RECOVERY_KEY_GROUPS - i, &j);
                if (r < 0)
                        return error_setf(r, _("Cannot get random bytes to choose recovery key groups: %s"), strerror(-r));
                j += i;
                t = pool[i], pool[i] = pool[j], pool[j] = t;
                picked[i] = pool[i];
        }
        /* Ascending, so the user types them in the order they appear on paper. */
        for (unsigned i = 1; i < n; i++)
                for (unsigned k = i; k > 0 && picked[k - 1] > picked[k]; k--) {
                        unsigned t = picked[k];
                        picked[k] = picked[k - 1], picked[k - 1] = t;
                }

        memcpy(ret_groups, picked, n * sizeof(unsigned));
        return 0;
}

/* "3", "3 and 7", "1, 3 and 7" */
static void format_group_list(char *buf, size_t size, const unsigned groups[], size_t n) {
        size_t used = 0;

        buf[0] = 0;
        for (size_t i = 0; i < n && used < size; i++) {
                /* TRANSLATORS: joins the last two numbers of a list of recovery key groups ("2, 5 and 7"). */
                const char *sep = i == 0 ? "" : i + 1 == n ? _(" and ") : ", ";
                int k = snprintf(buf + used, size - used, "%s%u", sep, groups[i]);
                if (k < 0)
                        break;
                used += (size_t) k;
        }
}

int recovery_key_check_groups(const Secret *key, const unsigned groups[], size_t n, const char *typed) {
        unsigned char letters[KEY_LETTERS];
        unsigned differ[RECOVERY_KEY_GROUPS] = {};
        unsigned wrong[RECOVERY_KEY_GROUPS];
        size_t count = 0, n_wrong = 0;
        char list[64];

        if (!key_is_canonical(key))
                return error_setf(-EINVAL, "The recovery key to check against is malformed.");
        if (!groups || n == 0 || n > RECOVERY_KEY_GROUPS)
                return error_setf(-EINVAL, "Between 1 and %d recovery key groups must be checked, not %zu.",
                                  RECOVERY_KEY_GROUPS, groups ? n : 0);
        for (size_t i = 0; i < n; i++)
                if (groups[i] < 1 || groups[i] > RECOVERY_KEY_GROUPS)
                        return error_setf(-EINVAL, "Recovery key group %u does not exist; groups are numbered 1 to %d.",
                                          groups[i], RECOVERY_KEY_GROUPS);

        format_group_list(list, sizeof(list), groups, n);

        /* Gather the typed letters; the layout of what was typed is not secret, the letters are. */
        for (const char *p = typed ?: ""; *p; p++) {
                if (is_separator(*p))
                        continue;
                if (count < sizeof(letters))
                        letters[count] = ascii_lower((unsigned char) *p);
                count++;
        }

        if (count != n * RECOVERY_KEY_GROUP_LENGTH) {
                secret_wipe(letters, sizeof(letters));
                return error_setf(-EKEYREJECTED,
                                  /* TRANSLATORS: letters needed, the groups ("2 and 5"), letters typed; by the number of groups. */
                                  ngettext("Type the %zu letters of recovery key group %s; %zu letters were typed.",
                                           "Type the %zu letters of recovery key groups %s, in that order; %zu letters were typed.", n),
                                  n * RECOVERY_KEY_GROUP_LENGTH, list, count);
        }

        /* Every letter of every group is compared; differences are OR-ed up, never branched on. */
        for (size_t i = 0; i < n; i++) {
                size_t base = (groups[i] - 1) * (RECOVERY_KEY_GROUP_LENGTH + 1);
                unsigned d = 0;

                for (size_t j = 0; j < RECOVERY_KEY_GROUP_LENGTH; j++)
                        d |= (unsigned) (letters[i * RECOVERY_KEY_GROUP_LENGTH + j] ^ key->data[base + j]);
                differ[i] = d;
        }
        secret_wipe(letters, sizeof(letters));

        for (size_t i = 0; i < n; i++)
                if (differ[i] != 0)
                        wrong[n_wrong++] = groups[i];
        secret_wipe(differ, sizeof(differ));

        if (n_wrong > 0) {
                char wrong_list[64];

                format_group_list(wrong_list, sizeof(wrong_list), wrong, n_wrong);
                return error_setf(-EKEYREJECTED,
                                  /* TRANSLATORS: %s are the group numbers ("2 and 5"); the forms go by their count. */
                                  ngettext("Recovery key group %s does not match what was typed; check what you wrote down and type it again.",
                                           "Recovery key groups %s do not match what was typed; check what you wrote down and type them again.",
                                           n_wrong),
                                  wrong_list);
        }
        return 0;
}

static void qrcode_freep(QRcode **q) {
        if (*q) {
                /* The modules encode the key. */
                secret_wipe((*q)->data, (size_t) (*q)->width * (size_t) (*q)->width);
                QRcode_free(*q);
        }
}

/* Module (x, y) in quiet-zone coordinates: true if light. Outside the symbol is quiet zone. */
static bool qr_light(const QRcode *q, int x, int y) {
        int w = q->width;

        x -= QR_QUIET_ZONE, y -= QR_QUIET_ZONE;
        if (x < 0 || y < 0 || x >= w || y >= w)
                return true;
        return !(q->data[(size_t) y * (size_t) w + (size_t) x] & 1); /* bit 0: dark module */
}

int recovery_key_qr_text(const Secret *key, bool unicode, Secret **ret) {
        static const char upper_half[] = "\u2580", lower_half[] = "\u2584", full_block[] = "\u2588";
        _cleanup_(qrcode_freep) QRcode *q = NULL;
        _cleanup_(secret_freep) Secret *text = NULL;
        size_t side, lines, line_bytes, total, at = 0;

        if (!ret)
                return error_setf(-EINVAL, "No place to return the QR code.");
        if (!key_is_canonical(key))
                return error_setf(-EINVAL, "Cannot draw a QR code of a malformed recovery key.");

        errno = 0;
        q = QRcode_encodeString((const char *) key->data, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
        if (!q) {
                int r = negative_errno();
                return error_setf(r, _("Cannot encode the recovery key as a QR code: %s"), strerror(-r));
        }
        if (q->width < 21 || (q->width - 21) % 4 != 0)
                return error_setf(-EPROTO, "libqrencode returned a QR code of impossible width %d.", q->width);

        side = (size_t) q->width + 2 * QR_QUIET_ZONE;
        if (unicode) {
                lines = DIV_ROUND_UP(side, 2);
                line_bytes = side * (sizeof(full_block) - 1) + 1; /* worst case: every cell a block */
        } else {
                lines = side;
                line_bytes = side * 2 + 1;
        }
        total = lines * line_bytes;

        text = secret_new(total);
        if (!text) {
                int r = negative_errno();
                return error_setf(r, _("Cannot allocate locked memory for the QR code: %s"), strerror(-r));
        }

        for (size_t l = 0; l < lines; l++) {
                for (size_t x = 0; x < side; x++) {
                        if (unicode) {
                                size_t y = 2 * l;
                                bool top = qr_light(q, (int) x, (int) y);
                                /* Below the last module row is background, not quiet zone. */
                                bool bottom = y + 1 < side && qr_light(q, (int) x, (int) y + 1);
                                const char *glyph = top && bottom ? full_block : top ? upper_half : bottom ? lower_half : " ";
                                size_t len = strlen(glyph);

                                memcpy(text->data + at, glyph, len);
                                at += len;
                        } else {
                                char c = qr_light(q, (int) x, (int) l) ? '#' : ' ';

                                text->data[at++] = (unsigned char) c;
                                text->data[at++] = (unsigned char) c;
                        }
                }
                text->data[at++] = '\n';
        }
        /* Cells drawn as ' ' take fewer bytes than the worst case; the rest stays zero. */
        text->size = at;
        text->data[at] = 0;

        *ret = TAKE_PTR(text);
        return 0;
}

const char *recovery_key_explanation(void) {
        return _("The recovery key uses only the letters c b d e f g h i j k l n r t u v, which sit on the same keys on common keyboard layouts (QWERTY, QWERTZ, AZERTY and others), so it types the same whichever layout is active when you need it.");
}

/* ---- escrow directory ------------------------------------------------------------------------ */

static bool owner_is_trusted(uid_t uid) {
        return uid == 0 || uid == geteuid();
}

/* Is the directory fd (shown as path) safe to look names up in (final: to write the key into)? */
static int escrow_check_directory(int fd, const char *dir, const char *path, bool final) {
        struct stat st;

        if (fstat(fd, &st) < 0)
                return error_setf(-errno, _("Cannot deliver the recovery key to %s: %s: %m."), dir, path);
        if (!owner_is_trusted(st.st_uid))
                return error_setf(-EPERM,
                                  _("Refusing to deliver the recovery key to %s: %s belongs to UID %u, neither root nor the user "
                                    "running imprint."),
                                  dir, path, (unsigned) st.st_uid);
        if ((st.st_mode & (S_IWGRP | S_IWOTH)) && (final || !(st.st_mode & S_ISVTX)))
                return error_setf(-EPERM,
                                  _("Refusing to deliver the recovery key to %s: %s may be written by other users (mode %04o); make "
                                    "it writable only by its owner (chmod go-w)."),
                                  dir, path, (unsigned) (st.st_mode & 07777));
        return 0;
}

int recovery_key_escrow_dir_open(const char *dir) {
        _cleanup_(freep) char *todo = NULL;
        _cleanup_(closep) int cur = -EBADF;
        char seen[PATH_MAX] = "/"; /* the path resolved so far, for messages */
        unsigned links = 0;
        int r, fd;

        if (isempty(dir))
                return error_setf(-EINVAL, _("The recovery key escrow directory is empty."));
        if (dir[0] == '/')
                todo = strdup(dir);
        else {
                _cleanup_(freep) char *cwd = getcwd(NULL, 0);
                if (!cwd)
                        return error_setf(-errno, _("Cannot deliver the recovery key to %s: %m."), dir);
                if (asprintf(&todo, "%s/%s", cwd, dir) < 0)
                        todo = NULL;
        }
        if (!todo)
                return -ENOMEM;

        cur = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (cur < 0)
                return -errno;
        for (;;) {
                _cleanup_(freep) char *name = NULL;
                char *p = todo;
                struct stat st;
                size_t len;

                while (*p == '/')
                        p++;
                if (!*p)
                        break;
                len = strcspn(p, "/");
                name = strndup(p, len);
                if (!name)
                        return -ENOMEM;
                memmove(todo, p + len, strlen(p + len) + 1);
                if (streq(name, "."))
                        continue;

                r = escrow_check_directory(cur, dir, seen, false);
                if (r < 0)
                        return r;
                len = strlen(seen);
                snprintf(seen + len, sizeof(seen) - len, "%s%s", len > 1 ? "/" : "", name);

                if (fstatat(cur, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return error_setf(-errno, _("Cannot deliver the recovery key to %s: %s: %m."), dir, seen);
                if (S_ISLNK(st.st_mode)) {
                        char target[PATH_MAX], *next;
                        ssize_t n;

                        if (!owner_is_trusted(st.st_uid))
                                return error_setf(-EPERM,
                                                  _("Refusing to deliver the recovery key to %s: %s is a symbolic link that belongs to "
                                                    "UID %u, who could point it anywhere."),
                                                  dir, seen, (unsigned) st.st_uid);
                        if (++links > 32)
                                return error_setf(-ELOOP, _("Cannot deliver the recovery key to %s: too many symbolic links."), dir);
                        n = readlinkat(cur, name, target, sizeof(target) - 1);
                        if (n < 0)
                                return error_setf(-errno, _("Cannot deliver the recovery key to %s: %s: %m."), dir, seen);
                        target[n] = 0;
                        /* Resolve the link's target, then what followed the link. An absolute
                         * target starts again at the root. */
                        if (asprintf(&next, "%s/%s", target, todo) < 0)
                                return -ENOMEM;
                        free(todo);
                        todo = next;
                        if (target[0] == '/') {
                                fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
                                if (fd < 0)
                                        return -errno;
                                close(cur);
                                cur = fd;
                                strcpy(seen, "/");
                        } else {
                                char *slash = strrchr(seen, '/');
                                slash[slash == seen ? 1 : 0] = 0;
                        }
                        continue;
                }
                if (!S_ISDIR(st.st_mode))
                        return error_setf(-ENOTDIR, _("Cannot deliver the recovery key to %s: %s is not a directory."), dir, seen);
                fd = openat(cur, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0)
                        return error_setf(-errno, _("Cannot deliver the recovery key to %s: %s: %m."), dir, seen);
                close(cur);
                cur = fd;
        }

        r = escrow_check_directory(cur, dir, seen, true);
        if (r < 0)
                return r;
        fd = openat(cur, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return error_setf(-errno, _("Cannot deliver the recovery key to %s: %m."), dir);
        return fd;
}
