/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* PE/COFF headers as far as an installer needs them: the section table of an EFI binary, the
 * sections of a unified kernel image (UKI), and the version stamp of systemd's EFI binaries.
 * Everything read here comes from files the installer did not build (an image's ESP, a source
 * DDI), so every offset is checked against the buffer before it is used; a malformed file is
 * -EBADMSG with a message naming it, never a crash. Layout: formats.md §2.9 (after systemd's
 * src/shared/pe-binary.c), UKI sections: formats.md §2.8. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

/* COFF Machine values (PE format, "Machine Types"). */
#define PE_MACHINE_I386 UINT16_C(0x014c)
#define PE_MACHINE_ARM UINT16_C(0x01c2)
#define PE_MACHINE_X86_64 UINT16_C(0x8664)
#define PE_MACHINE_ARM64 UINT16_C(0xaa64)
#define PE_MACHINE_RISCV64 UINT16_C(0x5064)
#define PE_MACHINE_LOONGARCH64 UINT16_C(0x6264)

/* Optional header Subsystem values; a UKI must be an EFI application (formats.md §2.8). */
#define PE_SUBSYSTEM_EFI_APPLICATION 10

/* systemd refuses images with more sections than this (pe-binary.c), and so do we. */
#define PE_SECTIONS_MAX 96

typedef struct PeSection {
        char name[9];             /* Name[8] plus a NUL: an 8-character name has none on disk */
        uint32_t virtual_size;    /* the real length of the contents */
        uint32_t virtual_address;
        uint32_t raw_size;        /* SizeOfRawData: VirtualSize rounded up to FileAlignment */
        uint32_t raw_offset;      /* PointerToRawData */
} PeSection;

typedef struct PeFile {
        uint16_t machine;   /* PE_MACHINE_* */
        uint16_t subsystem;
        bool pe32plus;      /* optional header Magic 0x20B (else 0x10B, PE32) */
        uint32_t section_alignment;
        uint32_t size_of_image; /* the first virtual address past every section */
        PeSection *sections;
        size_t n_sections;
} PeFile;

/* Little-endian fields of PE files, and whether [offset, offset + length) lies inside a buffer of
 * size bytes (the operands are 32-bit file fields plus small constants: the 64-bit sum cannot wrap). */
static inline uint16_t pe_le16(const uint8_t *p) {
        return (uint16_t) (p[0] | (p[1] << 8));
}
static inline uint32_t pe_le32(const uint8_t *p) {
        return (uint32_t) p[0] | ((uint32_t) p[1] << 8) | ((uint32_t) p[2] << 16) | ((uint32_t) p[3] << 24);
}
static inline bool pe_range_ok(uint64_t offset, uint64_t length, size_t size) {
        return offset <= (uint64_t) size && length <= (uint64_t) size - offset;
}

/* Parses the headers of a PE image held in buf (size bytes). Malformed input (no MZ, e_lfanew
 * outside the buffer, no "PE\0\0", an unknown optional header, a section table beyond the buffer,
 * a section whose raw data lies beyond the file, more than PE_SECTIONS_MAX sections) is -EBADMSG
 * with the message "<what> is not a PE file: <reason>". */
int pe_parse(const void *buf, size_t size, const char *what, PeFile *ret);
void pe_file_done(PeFile *f);

/* The first section called name (at most 8 characters), or NULL. For a multi-profile UKI the first
 * match is the base profile's section, which comes before any .profile section (UAPI UKI spec). */
const PeSection *pe_find_section(const PeFile *f, const char *name);

/* A view of a section's contents inside buf, without copying: VirtualSize bytes from
 * PointerToRawData, as systemd reads them (formats.md §2.9), clamped to SizeOfRawData since the
 * file holds no more (the rest is zero-filled at load time). -EBADMSG if they are not inside buf. */
int pe_section_view(const void *buf, size_t size, const PeSection *s, const uint8_t **ret, size_t *ret_size);

/* The same bytes, copied and NUL-terminated so that text sections can be used as strings.
 * ret_size (optional) excludes the NUL. */
int pe_section_data(const void *buf, size_t size, const PeSection *s, char **ret, size_t *ret_size);

/* The EFI architecture suffix for a Machine value as used in removable-media paths
 * (/EFI/BOOT/BOOT<ARCH>.EFI) and systemd's binary names: "x64", "ia32", "aa64", "arm",
 * "riscv64", "loongarch64"; NULL for anything else. */
const char *pe_machine_efi_arch(uint16_t machine) _pure_;

typedef struct UkiInfo {
        char *os_pretty_name; /* .osrel PRETTY_NAME, else IMAGE_ID, else NAME, else ID: sd-boot's title (formats.md §2.3) */
        char *os_id;          /* ID */
        char *image_id;       /* IMAGE_ID */
        char *version;        /* IMAGE_VERSION, else VERSION, else VERSION_ID, else BUILD_ID (formats.md §2.3) */
        char *uname;          /* .uname, else the version in the .linux bzImage header, else NULL */
        char *cmdline;        /* .cmdline without trailing whitespace and NULs, or NULL */
        bool has_pcrsig;
        bool has_pcrpkey;
        char *pcrpkey;        /* .pcrpkey (PEM), or NULL */
        char *sbat;           /* .sbat, or NULL */
} UkiInfo;

/* Reads a UKI as systemd accepts one (pe_is_uki(), formats.md §2.8): a PE image with Subsystem 10
 * (EFI application), a .linux and an .osrel section. Anything else is -EBADMSG with the message
 * "<what> is not a unified kernel image: <what is missing>". */
int uki_read(const void *buf, size_t size, const char *what, UkiInfo *ret);
void uki_info_done(UkiInfo *u);

/* The version stamp of a systemd EFI binary (sd-boot, the stub): the text between
 * "#### LoaderInfo: " and " ####" anywhere in the file, as bootctl's get_file_version() finds it
 * (formats.md §2.7), e.g. "systemd-boot 252.39-1~deb12u2". -ENOENT if the file has none, -EBADMSG if
 * the stamp is not terminated or not printable text. */
int efi_binary_loader_info(const void *buf, size_t size, const char *what, char **ret);
