/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Installing an image that can be read only once, start to end (source.h: a compressed file, or
 * one fetched over http(s)), without keeping it anywhere:
 *
 *  - before the plan: SHA256SUMS and its signature are checked, and the image is read up to the
 *    first MiB of its big partition (usr of a usr image, root of a root image) into a sparse
 *    memory file that stands in for the image: its partition table, its ESP with the UKIs and
 *    systemd-boot, and the big partition's superblock, so that image_open()/image_load_boot()
 *    work on it as on any image. What needs the big partition's content (its repart.d, its
 *    os-release, whether its systemd has homed-firstboot) waits: the UKI says what the OS is;
 *  - the install's "stream" step writes the big partition straight onto its place on the target
 *    (zero chunks not written, zeroed there), with the digest the read-back checks, and keeps the
 *    small partitions after it (verity, signature) in the memory file. At the end of the stream
 *    the SHA256 of the published file must match SHA256SUMS, else nothing is made bootable;
 *  - then the big partition is read where it landed, and the plan is made again with what it
 *    says; it must not move anything already written. */

#include <stdbool.h>
#include <stdint.h>

#include "blockcopy.h"
#include "source.h"

typedef struct Image Image;
typedef struct ImageStream ImageStream;

typedef struct StreamOpenOptions {
        const char *key_path;        /* the line's key for SHA256SUMS' signature; required for URLs */
        SourceOptions source;
} StreamOpenOptions;

/* Whether location must be streamed: a URL or a compressed file. 1 yes, 0 no, <0 error. */
int image_location_is_stream(const char *location);

/* Checks SHA256SUMS (and its signature), opens the source and reads the image up to its big
 * partition, and returns the Image that stands for it (image_open() + image_load_boot() done,
 * usr checks waiting). */
int image_stream_open(const char *location, const StreamOpenOptions *o, Image **ret);

/* Whether the image still waits for its stream (its big partition's content is not readable). */
bool image_stream_pending(const Image *img);
/* The partition of the image that the stream writes onto the target. */
const struct DiskPartition *image_stream_partition(const Image *img);
/* "zstd", "xz", "raw" and the location, for messages and the report. */
const char *image_stream_compression(const Image *img);
const char *image_stream_location(const Image *img);
unsigned image_stream_resumes(const Image *img);
uint64_t image_stream_raw_size(const Image *img);

/* The stream step: writes the big partition to dst (its region as c describes it: dst_fd,
 * dst_offset, dst_is_block; src_* and length are the stream's), keeps the rest, checks the
 * SHA256 at the end. progress gets the decompressed bytes of the whole image. */
int image_stream_run(Image *img, const CopyRegion *c, copy_progress_t progress, void *userdata,
                     uint8_t ret_digest[COPY_DIGEST_SIZE], uint64_t *ret_written);

/* After image_stream_run(): the big partition is read from where it landed (disk at offset:
 * the target, or its dm-crypt volume at 0), and the usr checks that waited run (with the
 * image certificate when one is given). */
int image_stream_complete(Image *img, const char *disk, uint64_t offset, const char *cert_pem);

/* For an image file read as it is: SHA256SUMS beside it must be signed with key_path and list
 * it (its digest is compared by the install's verify-image step). */
int image_check_signed_sums(const char *path, const char *key_path);

void image_stream_free(ImageStream *s);
