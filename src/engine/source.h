/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Where an image comes from when it is not a plain file to read at random: a compressed file
 * (.raw.zst, .raw.xz, told by its magic, not its name) or an http:// or https:// URL (libcurl),
 * or both. Read once, from start to end, as the decompressed image; the SHA256 of the bytes as
 * published (compressed) is computed on the way. A dropped connection is resumed with an HTTP
 * range request from the byte where it stopped, never from zero.
 *
 * Beside the image: SHA256SUMS, and its detached signature checked with the key a line names:
 * SHA256SUMS.gpg with an OpenPGP keyring (stock gpgv), or SHA256SUMS.sig with a PEM public key
 * (libcrypto, the signature of "openssl dgst -sha256 -sign"). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "macro.h"

typedef enum SourceCompression {
        SOURCE_RAW,
        SOURCE_ZSTD,
        SOURCE_XZ,
        _SOURCE_COMPRESSION_MAX,
} SourceCompression;

const char *source_compression_to_string(SourceCompression c); /* "raw", "zstd", "xz" */

typedef struct SourceOptions {
        unsigned retries;            /* attempts after a failed or dropped transfer; 0: default 8 */
        unsigned retry_delay_ms;     /* first wait, doubled each time up to 30 s; 0: default 1000 */
        unsigned stall_seconds;      /* a transfer slower than 1 KiB/s for this long counts as
                                      * dropped; 0: default 30 */
} SourceOptions;

typedef struct ImageSource ImageSource;

/* Whether location is an http:// or https:// URL (anything else is a local path). */
bool source_is_url(const char *location);

/* Whether the local file is compressed (zstd or xz magic): then it must be streamed. Errors
 * (-ENOENT…) as from open(). */
int source_file_compression(const char *path, SourceCompression *ret);

/* Opens location and reads far enough to know its compression. For a URL: the server must
 * answer 200 (or 206) — 404 and the like are an error with one sentence naming the URL and the
 * status. Sets error_setf() on failure. */
int source_open(const char *location, const SourceOptions *o, ImageSource **ret);

SourceCompression source_compression(const ImageSource *s);

/* Fills buf with the next n bytes of the decompressed image, or fewer only at its end. Returns
 * the number of bytes, 0 at the end, <0 on error (error_setf() says what: the URL, the HTTP
 * status or the curl error, after the retries, or "the compressed data is damaged"). */
ssize_t source_read(ImageSource *s, void *buf, size_t n);

/* The size of the file as published (compressed): the file's size, or the HTTP Content-Length;
 * 0 when the server did not say. */
uint64_t source_raw_size(const ImageSource *s);
/* Bytes of the published file consumed so far (each byte counted once, however often resumed). */
uint64_t source_raw_done(const ImageSource *s);
/* Transfers that were resumed after a drop or stall. */
unsigned source_resumes(const ImageSource *s);

/* After source_read() returned 0: checks that the compressed stream ended cleanly (no trailing
 * garbage, complete frame) and that as many bytes came as the server announced, and gives the
 * SHA256 (lowercase hex) of the published bytes. */
int source_finish(ImageSource *s, char ret_sha256[65]);

ImageSource *source_free(ImageSource *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(ImageSource *, source_free);

/* The location of a file beside location: "/srv/a/img.raw.zst" + "SHA256SUMS" →
 * "/srv/a/SHA256SUMS"; "https://h/p/img.raw.zst?x" → "https://h/p/SHA256SUMS". */
int source_sibling(const char *location, const char *name, char **ret);

/* Reads a small file (a local path or a URL) whole, at most max bytes (more is -EFBIG).
 * -ENOENT when it does not exist (HTTP 404/410). With retries as above for network errors. */
int source_fetch_small(const char *location, const SourceOptions *o, size_t max, void **ret, size_t *ret_size);

/* The digest SHA256SUMS gives for the file name (the last path component of location, without a
 * query string): 1 and ret filled, 0 when it lists no such name, <0 on error. */
int sums_lookup(const void *sums, size_t size, const char *name, char ret_sha256[65]);

typedef enum SumsKeyKind {
        SUMS_KEY_GPG,    /* an OpenPGP keyring or public key (binary or ASCII-armoured): SHA256SUMS.gpg */
        SUMS_KEY_PEM,    /* a PEM public key (RSA, EC, Ed25519): SHA256SUMS.sig */
} SumsKeyKind;

/* What kind of key the file holds, by its content. -EINVAL with error_setf() when neither. */
int sums_key_kind(const char *key_path, SumsKeyKind *ret);
/* The name of the signature file for that kind: "SHA256SUMS.gpg" or "SHA256SUMS.sig". */
const char *sums_signature_name(SumsKeyKind k);

/* Checks the detached signature of SHA256SUMS with the key: 0 when it is good, -EBADMSG (with
 * error_setf(): "the signature of SHA256SUMS does not match the key …") when not, other errors
 * when the key or signature cannot be read. gpgv runs with the keyring given (dearmoured into a
 * private temporary file when armoured) and nothing else trusted; its output goes to the log. */
int sums_verify(const void *sums, size_t sums_size, const void *sig, size_t sig_size, const char *key_path, SumsKeyKind kind);
