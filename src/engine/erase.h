/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Erasing one partition for a factory reset, in a time that does not grow with its size where the
 * data is encrypted:
 *
 *   crypto-erase (LUKS2): every keyslot destroyed (luks_erase()), then the whole metadata area —
 *     both JSON header copies and the keyslot area, from the start of the partition to the data
 *     offset — overwritten with random bytes and flushed, so that nothing that could rebuild the
 *     volume key remains; then the data area discarded where the device supports it (BLKDISCARD;
 *     an image file: its range punched out). The data area is never overwritten: without the
 *     volume key it is noise, and the screen says so.
 *   discard (unencrypted, device supports it): BLKDISCARD over the partition (or punch a hole in
 *     an image file), and the first and last MiB zeroed so no signature survives on devices that
 *     do not return zeroes after a discard.
 *   overwrite (unencrypted, no discard): zeroes over the whole partition; erase_estimate_usec()
 *     says how long that takes before it is chosen.
 *   secure-discard: BLKSECDISCARD, only when asked (ResetRequest.secure_erase) and the device
 *     offers it; named as such, never claimed when the device refused it.
 *
 * The result says what was actually done; a reset never claims more than the device gave. */

#include <stdbool.h>
#include <stdint.h>

#include "string-table.h"

typedef enum EraseMethod {
        ERASE_CRYPTO,            /* "crypto-erase" */
        ERASE_DISCARD,           /* "discard" */
        ERASE_OVERWRITE,         /* "overwrite" */
        ERASE_SECURE_DISCARD,    /* "secure-discard" */
        _ERASE_METHOD_MAX,
        _ERASE_METHOD_INVALID = -EINVAL,
} EraseMethod;

DECLARE_STRING_TABLE_LOOKUP(erase_method, EraseMethod);

typedef struct EraseTarget {
        const char *node;        /* the partition's node (block devices), or NULL */
        const char *file;        /* the disk or image file holding it (always set) */
        int fd;                  /* the disk, open read-write (the executor's), or -EBADF */
        uint64_t offset, size;   /* the partition, bytes from the start of file */
        bool is_block;
        bool secure;             /* secure-discard wanted (only when the device offers it) */
} EraseTarget;

typedef struct EraseResult {
        EraseMethod method;
        bool luks;                /* a LUKS2 header was found (and crypto-erased) */
        char *luks_uuid;          /* the LUKS2 UUID that was erased, or NULL */
        unsigned keyslots_destroyed;
        uint64_t header_bytes;    /* bytes overwritten at the start (header copies + keyslot area) */
        bool data_discarded;      /* the data area was discarded (or punched) */
        bool secure;              /* BLKSECDISCARD succeeded */
        uint64_t bytes_written;   /* everything written (overwrite: the whole partition) */
        uint64_t usec;
        unsigned luks_version;    /* 2, or 1 for a LUKS1 header (crypto-erased the same way); 0 without */
} EraseResult;

void erase_result_done(EraseResult *r);

typedef void (*EraseProgress)(uint64_t done, uint64_t total, void *userdata);

/* Erases t as described above. Progress counts bytes written or discarded. */
int erase_partition(const EraseTarget *t, EraseProgress progress, void *userdata, EraseResult *ret);

/* The method erase_partition() would use for t (reads the header, asks the device), and how
 * long it would take (overwrite: size over a measured or assumed write rate; 0 when unknown). */
int erase_probe(const EraseTarget *t, EraseMethod *ret_method, uint64_t *ret_estimate_usec);

/* For people: "crypto-erase (LUKS2 header and 3 keyslots destroyed, data discarded)". */
int erase_result_describe(const EraseResult *r, char **ret);
