/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What imprint checks of a usr image's dm-verity pieces before installing it, without
 * device-mapper: the verity superblock (cryptsetup's on-disk format, "VERITY header" in
 * cryptsetup's docs/on-disk-format-verity), the root hash of the hash tree's top block, the
 * usr-verity-sig partition (UAPI DPS: a NUL-padded JSON object with "rootHash" and a base64
 * PKCS#7 "signature" over the root hash in hex), and the names in a UKI's initrd (cpio "newc",
 * possibly several archives one after another, compressed or not). No messages: the caller
 * says what a result means for the image. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VERITY_SUPERBLOCK_SIZE 512

typedef struct VeritySuperblock {
        uint32_t version, hash_type;
        char algorithm[33];
        uint32_t data_block_size, hash_block_size;
        uint64_t data_blocks;
        uint16_t salt_size;
        uint8_t salt[256];
} VeritySuperblock;

/* -EBADMSG if buf does not start with a verity superblock imprint understands. */
int verity_superblock_parse(const uint8_t *buf, size_t size, VeritySuperblock *ret);

/* The root hash (lowercase hex) of a hash tree whose top block is top (hash_block_size bytes,
 * the first block after the superblock): digest(salt || block) for hash type 1, digest(block ||
 * salt) for type 0. -EOPNOTSUPP for a digest OpenSSL does not know. */
int verity_root_hash(const VeritySuperblock *sb, const uint8_t *top, char **ret_hex);

/* Parses the usr-verity-sig JSON (text up to the first NUL): rootHash (lowercased) and the
 * decoded signature. -EBADMSG when it is not such an object. */
int verity_sig_parse(const char *text, size_t size, char **ret_root_hash, uint8_t **ret_sig, size_t *ret_sig_size);

/* Whether sig parses as DER PKCS#7 (-EBADMSG if not) and, with cert_pem, whether it verifies as a
 * detached signature over root_hash by that certificate: -EINVAL when cert_pem is no certificate,
 * -EKEYREJECTED when the signature does not verify. */
int verity_sig_check(const char *root_hash, const uint8_t *sig, size_t sig_size, const char *cert_pem);

typedef struct InitrdFacts {
        bool complete;          /* every part was read; else unknown_what says which was not */
        char unknown_what[64];  /* e.g. "lz4-compressed data" */
        bool gpt_auto;          /* usr/lib/systemd/system-generators/systemd-gpt-auto-generator */
        bool veritysetup;       /* usr/lib/systemd/systemd-veritysetup */
        size_t n_files;
} InitrdFacts;

/* Lists the initrd: uncompressed cpio archives directly, gzip/zstd/xz ones through gzip -dc,
 * zstd -dc, xz -dc. */
int initrd_scan(const uint8_t *buf, size_t size, InitrdFacts *ret);
