/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fileio.h"
#include "i18n.h"
#include "pe.h"

/* Offsets and sizes from the PE format (formats.md §2.9). Fields are assembled byte by byte: the
 * buffer is untrusted and unaligned, so no struct is ever laid over it. */
#define DOS_HEADER_SIZE 64
#define DOS_E_LFANEW 0x3C
#define PE_SIGNATURE_SIZE 4
#define COFF_HEADER_SIZE 20
#define COFF_MACHINE 0
#define COFF_NUMBER_OF_SECTIONS 2
#define COFF_SIZE_OF_OPTIONAL_HEADER 16
#define OPT_MAGIC 0
#define OPT_SECTION_ALIGNMENT 32 /* same offset in PE32 and PE32+ */
#define OPT_SIZE_OF_IMAGE 56
#define OPT_SUBSYSTEM 68
#define OPT_MIN_SIZE (OPT_SUBSYSTEM + 2)
#define OPT_MAGIC_PE32 UINT16_C(0x010B)
#define OPT_MAGIC_PE32PLUS UINT16_C(0x020B)
#define SECTION_HEADER_SIZE 40
#define SECTION_VIRTUAL_SIZE 8
#define SECTION_VIRTUAL_ADDRESS 12
#define SECTION_SIZE_OF_RAW_DATA 16
#define SECTION_POINTER_TO_RAW_DATA 20

/* x86 boot protocol (Documentation/arch/x86/boot.rst), as ukify's Uname.scrape_x86 reads it
 * (formats.md §2.9): "HdrS" at 0x202, a 16-bit pointer at 0x20E to a string at 0x200 + pointer. */
#define BZIMAGE_HDRS_OFFSET 0x202
#define BZIMAGE_KERNEL_VERSION_OFFSET 0x20E
#define BZIMAGE_SETUP_BASE 0x200
#define BZIMAGE_VERSION_MAX 128 /* ukify reads no more than this */

#define LOADER_INFO_START "#### LoaderInfo: "
#define LOADER_INFO_END " ####"
#define LOADER_INFO_MAX 256

/* A section name fit for a message: names come from the file and may hold any byte. */
static const char *printable_name(const char *name, char buf[static 9]) {
        size_t i;

        for (i = 0; i < 8 && name[i]; i++)
                buf[i] = name[i] >= 0x20 && name[i] < 0x7f ? name[i] : '?';
        buf[i] = 0;
        return buf;
}

static const char *subsystem_to_string(uint16_t subsystem) {
        /* PE format, "Windows Subsystem". */
        switch (subsystem) {
        case 1:  return "native";
        case 2:  return "Windows GUI";
        case 3:  return "Windows console";
        case 10: return "EFI application";
        case 11: return "EFI boot service driver";
        case 12: return "EFI runtime driver";
        case 13: return "EFI ROM";
        default: return "unknown";
        }
}

const char *pe_machine_efi_arch(uint16_t machine) {
        switch (machine) {
        case PE_MACHINE_X86_64:      return "x64";
        case PE_MACHINE_I386:        return "ia32";
        case PE_MACHINE_ARM64:       return "aa64";
        case PE_MACHINE_ARM:         return "arm";
        case PE_MACHINE_RISCV64:     return "riscv64";
        case PE_MACHINE_LOONGARCH64: return "loongarch64";
        default:                     return NULL;
        }
}

void pe_file_done(PeFile *f) {
        if (!f)
                return;
        free(f->sections);
        *f = (PeFile) {};
}

int pe_parse(const void *buf, size_t size, const char *what, PeFile *ret) {
        const uint8_t *p = buf;
        _cleanup_(freep) PeSection *sections = NULL;
        uint32_t e_lfanew;
        uint64_t coff, opt, table;
        uint16_t n_sections, opt_size, magic;
        char namebuf[9];

        if (!what)
                what = "PE image";

        if (size < DOS_HEADER_SIZE)
                return error_setf(-EBADMSG, _("%s is not a PE file: it is only %zu bytes long, shorter than a DOS header."),
                                  what, size);
        if (p[0] != 'M' || p[1] != 'Z')
                return error_setf(-EBADMSG, _("%s is not a PE file: it does not start with the MZ signature."), what);

        e_lfanew = pe_le32(p + DOS_E_LFANEW);
        if (!pe_range_ok(e_lfanew, PE_SIGNATURE_SIZE + COFF_HEADER_SIZE, size))
                return error_setf(-EBADMSG,
                                  _("%s is not a PE file: its PE header offset (e_lfanew 0x%" PRIx32 ") lies beyond the end of the file (%zu bytes)."),
                                  what, e_lfanew, size);
        if (memcmp(p + e_lfanew, "PE\0\0", PE_SIGNATURE_SIZE) != 0)
                return error_setf(-EBADMSG, _("%s is not a PE file: there is no PE signature at offset 0x%" PRIx32 "."),
                                  what, e_lfanew);

        coff = (uint64_t) e_lfanew + PE_SIGNATURE_SIZE;
        n_sections = pe_le16(p + coff + COFF_NUMBER_OF_SECTIONS);
        opt_size = pe_le16(p + coff + COFF_SIZE_OF_OPTIONAL_HEADER);
        opt = coff + COFF_HEADER_SIZE;

        if (opt_size < OPT_MIN_SIZE)
                return error_setf(-EBADMSG,
                                  _("%s is not a PE file: its optional header is %u bytes, too short to hold the subsystem field."),
                                  what, opt_size);
        if (!pe_range_ok(opt, opt_size, size))
                return error_setf(-EBADMSG,
                                  _("%s is not a PE file: its optional header (%u bytes at offset 0x%" PRIx64 ") extends beyond the end of the file (%zu bytes)."),
                                  what, opt_size, opt, size);
        magic = pe_le16(p + opt + OPT_MAGIC);
        if (magic != OPT_MAGIC_PE32 && magic != OPT_MAGIC_PE32PLUS)
                return error_setf(-EBADMSG,
                                  _("%s is not a PE file: its optional header magic is 0x%04x, neither PE32 (0x10b) nor PE32+ (0x20b)."),
                                  what, magic);

        if (n_sections > PE_SECTIONS_MAX)
                return error_setf(-EBADMSG, _("%s is not a PE file: it declares %u sections, more than the %u allowed."),
                                  what, n_sections, PE_SECTIONS_MAX);
        table = opt + opt_size;
        if (!pe_range_ok(table, (uint64_t) n_sections * SECTION_HEADER_SIZE, size))
                return error_setf(-EBADMSG,
                                  _("%s is not a PE file: its section table (%u sections at offset 0x%" PRIx64 ") extends beyond the end of the file (%zu bytes)."),
                                  what, n_sections, table, size);

        if (n_sections > 0) {
                sections = calloc(n_sections, sizeof(PeSection));
                if (!sections)
                        return error_setf(-ENOMEM, _("Cannot read the section table of %s: out of memory."), what);
        }

        for (size_t i = 0; i < n_sections; i++) {
                const uint8_t *h = p + table + i * SECTION_HEADER_SIZE;
                PeSection *s = &sections[i];

                /* Name[8] is NUL-padded, and has no NUL at all when all 8 bytes are used. */
                memcpy(s->name, h, 8);
                s->name[8] = 0;
                s->virtual_size = pe_le32(h + SECTION_VIRTUAL_SIZE);
                s->virtual_address = pe_le32(h + SECTION_VIRTUAL_ADDRESS);
                s->raw_size = pe_le32(h + SECTION_SIZE_OF_RAW_DATA);
                s->raw_offset = pe_le32(h + SECTION_POINTER_TO_RAW_DATA);

                /* A section without raw data (.bss-like) occupies no bytes of the file. */
                if (s->raw_size > 0 && !pe_range_ok(s->raw_offset, s->raw_size, size))
                        return error_setf(-EBADMSG,
                                          _("%s is not a PE file: the data of section %s (%" PRIu32 " bytes at offset 0x%" PRIx32 ") extends beyond the end of the file (%zu bytes)."),
                                          what, printable_name(s->name, namebuf), s->raw_size, s->raw_offset, size);
        }

        *ret = (PeFile) {
                .machine = pe_le16(p + coff + COFF_MACHINE),
                .subsystem = pe_le16(p + opt + OPT_SUBSYSTEM),
                .pe32plus = magic == OPT_MAGIC_PE32PLUS,
                .section_alignment = pe_le32(p + opt + OPT_SECTION_ALIGNMENT),
                .size_of_image = pe_le32(p + opt + OPT_SIZE_OF_IMAGE),
                .sections = TAKE_PTR(sections),
                .n_sections = n_sections,
        };
        return 0;
}

const PeSection *pe_find_section(const PeFile *f, const char *name) {
        if (!f || !name || strlen(name) > 8)
                return NULL;

        for (size_t i = 0; i < f->n_sections; i++)
                if (strncmp(f->sections[i].name, name, 8) == 0)
                        return &f->sections[i];
        return NULL;
}

int pe_section_view(const void *buf, size_t size, const PeSection *s, const uint8_t **ret, size_t *ret_size) {
        uint32_t n;
        char namebuf[9];

        /* systemd reads VirtualSize bytes (pe_read_section_data()); when VirtualSize exceeds
         * SizeOfRawData the loader zero-fills the tail in memory, and only the raw part exists in
         * the file. */
        n = MIN(s->virtual_size, s->raw_size);
        if (n > 0 && !pe_range_ok(s->raw_offset, n, size))
                return error_setf(-EBADMSG,
                                  _("Section %s (%" PRIu32 " bytes at offset 0x%" PRIx32 ") extends beyond the end of the file (%zu bytes)."),
                                  printable_name(s->name, namebuf), n, s->raw_offset, size);

        *ret = n > 0 ? (const uint8_t *) buf + s->raw_offset : (const uint8_t *) buf;
        *ret_size = n;
        return 0;
}

int pe_section_data(const void *buf, size_t size, const PeSection *s, char **ret, size_t *ret_size) {
        const uint8_t *data;
        size_t n;
        char *copy, namebuf[9];
        int r;

        r = pe_section_view(buf, size, s, &data, &n);
        if (r < 0)
                return r;

        copy = malloc(n + 1);
        if (!copy)
                return error_setf(-ENOMEM, _("Cannot copy section %s: out of memory."), printable_name(s->name, namebuf));
        if (n > 0)
                memcpy(copy, data, n);
        copy[n] = 0;

        *ret = copy;
        if (ret_size)
                *ret_size = n;
        return 0;
}

void uki_info_done(UkiInfo *u) {
        if (!u)
                return;
        free(u->os_pretty_name);
        free(u->os_id);
        free(u->image_id);
        free(u->version);
        free(u->uname);
        free(u->cmdline);
        free(u->pcrpkey);
        free(u->sbat);
        *u = (UkiInfo) {};
}

/* The first of keys (NULL-terminated) with a non-empty value. */
static char *os_release_first(const char *osrel, ...) _sentinel_;
static char *os_release_first(const char *osrel, ...) {
        const char *key;
        char *v = NULL;
        va_list ap;

        va_start(ap, osrel);
        while ((key = va_arg(ap, const char *))) {
                v = env_file_get(osrel, key);
                if (!isempty(v))
                        break;
                free(v);
                v = NULL;
        }
        va_end(ap);
        return v;
}

/* Cuts off trailing whitespace and NUL padding, which tools add to text sections. */
static void strip_trailing(char *s, size_t n) {
        while (n > 0 && (s[n - 1] == 0 || s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
                n--;
        s[n] = 0;
}

/* Kernel releases end up in file names (kernel-install's <entry-token>-<version>.efi), so accept
 * only the characters they are made of. */
static bool kernel_release_is_valid(const char *s, size_t n) {
        if (n == 0)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];

                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      strchr("._+~-", c)))
                        return false;
        }
        return true;
}

/* Where the kernel release lies in an x86 bzImage's setup header: the string there reads
 * "6.1.0-18-amd64 (debian-kernel@lists.debian.org) #1 SMP …", and the release is its first word.
 * false when the kernel carries none (another architecture, or no pointer). */
static bool bzimage_release_span(const uint8_t *k, size_t n, size_t *ret_start, size_t *ret_len) {
        size_t start, len = 0;
        uint16_t ptr;

        if (n < BZIMAGE_KERNEL_VERSION_OFFSET + 2 || memcmp(k + BZIMAGE_HDRS_OFFSET, "HdrS", 4) != 0)
                return false;
        ptr = pe_le16(k + BZIMAGE_KERNEL_VERSION_OFFSET);
        if (ptr == 0)
                return false;
        start = BZIMAGE_SETUP_BASE + (size_t) ptr;
        if (start >= n)
                return false;

        while (len < BZIMAGE_VERSION_MAX && start + len < n && k[start + len] != 0 && k[start + len] != ' ')
                len++;
        if (!kernel_release_is_valid((const char *) k + start, len))
                return false;

        *ret_start = start;
        *ret_len = len;
        return true;
}

/* A text section as a string: cut at its first NUL, and with strip also without trailing whitespace. */
static int section_text(const void *buf, size_t size, const PeFile *pe, const char *name, bool strip,
                        const char *what, char **ret) {
        const PeSection *s;
        char *text;
        size_t n;
        int r;

        s = pe_find_section(pe, name);
        if (!s) {
                *ret = NULL;
                return 0;
        }
        r = pe_section_data(buf, size, s, &text, &n);
        if (r < 0)
                return error_prefixf(r, _("Cannot read %s"), what);
        if (strip)
                strip_trailing(text, n);
        *ret = text;
        return 0;
}

int uki_read(const void *buf, size_t size, const char *what, UkiInfo *ret) {
        _cleanup_(pe_file_done) PeFile pe = {};
        _cleanup_(uki_info_done) UkiInfo u = {};
        _cleanup_(freep) char *osrel = NULL;
        const PeSection *linux_section, *osrel_section;
        int r;

        if (!what)
                what = "UKI";

        r = pe_parse(buf, size, what, &pe);
        if (r < 0)
                return r;

        /* systemd's pe_is_uki(): subsystem, then .linux, then .osrel (formats.md §2.8). */
        if (pe.subsystem != PE_SUBSYSTEM_EFI_APPLICATION)
                return error_setf(-EBADMSG,
                                  _("%s is not a unified kernel image: its PE subsystem is %u (%s), not %u (EFI application)."),
                                  what, pe.subsystem, subsystem_to_string(pe.subsystem), PE_SUBSYSTEM_EFI_APPLICATION);
        linux_section = pe_find_section(&pe, ".linux");
        if (!linux_section)
                return error_setf(-EBADMSG, _("%s is not a unified kernel image: it has no .linux section."), what);
        osrel_section = pe_find_section(&pe, ".osrel");
        if (!osrel_section)
                return error_setf(-EBADMSG, _("%s is not a unified kernel image: it has no .osrel section."), what);

        r = pe_section_data(buf, size, osrel_section, &osrel, NULL);
        if (r < 0)
                return error_prefixf(r, _("Cannot read %s"), what);

        /* sd-boot's title and version order (formats.md §2.3). env_file_get() cannot tell "absent"
         * from "out of memory", so a missing key is all either can mean here. */
        u.os_pretty_name = os_release_first(osrel, "PRETTY_NAME", "IMAGE_ID", "NAME", "ID", NULL);
        u.os_id = os_release_first(osrel, "ID", NULL);
        u.image_id = os_release_first(osrel, "IMAGE_ID", NULL);
        u.version = os_release_first(osrel, "IMAGE_VERSION", "VERSION", "VERSION_ID", "BUILD_ID", NULL);

        r = section_text(buf, size, &pe, ".uname", true, what, &u.uname);
        if (r < 0)
                return r;
        if (u.uname && !kernel_release_is_valid(u.uname, strlen(u.uname)))
                return error_setf(-EBADMSG, _("%s has a .uname section that does not hold a kernel release."), what);
        if (!u.uname) {
                const uint8_t *kernel;
                size_t kernel_size, start, len;

                r = pe_section_view(buf, size, linux_section, &kernel, &kernel_size);
                if (r < 0)
                        return error_prefixf(r, _("Cannot read %s"), what);
                if (bzimage_release_span(kernel, kernel_size, &start, &len)) {
                        u.uname = strndup((const char *) kernel + start, len);
                        if (!u.uname)
                                return error_setf(-ENOMEM, _("Cannot read the kernel release of %s: out of memory."), what);
                }
        }

        r = section_text(buf, size, &pe, ".cmdline", true, what, &u.cmdline);
        if (r < 0)
                return r;
        r = section_text(buf, size, &pe, ".pcrpkey", false, what, &u.pcrpkey);
        if (r < 0)
                return r;
        r = section_text(buf, size, &pe, ".sbat", false, what, &u.sbat);
        if (r < 0)
                return r;
        u.has_pcrpkey = !!u.pcrpkey;
        u.has_pcrsig = !!pe_find_section(&pe, ".pcrsig");

        *ret = u;
        u = (UkiInfo) {};
        return 0;
}

int efi_binary_loader_info(const void *buf, size_t size, const char *what, char **ret) {
        const char *start, *end, *p = buf;
        char *s;

        if (!what)
                what = "EFI binary";

        /* bootctl's get_file_version() scans the whole file, not only .sdmagic (formats.md §2.7). */
        start = memmem(p, size, LOADER_INFO_START, strlen(LOADER_INFO_START));
        if (!start)
                return error_setf(-ENOENT, "%s carries no systemd version stamp (\"" LOADER_INFO_START "…" LOADER_INFO_END "\").",
                                  what);
        start += strlen(LOADER_INFO_START);

        end = memmem(start, size - (size_t) (start - p), LOADER_INFO_END, strlen(LOADER_INFO_END));
        if (!end || end == start || end - start > LOADER_INFO_MAX)
                return error_setf(-EBADMSG, _("%s has a malformed systemd version stamp: it is empty, unterminated or too long."),
                                  what);
        for (const char *c = start; c < end; c++)
                if (*c < 0x20 || *c >= 0x7f)
                        return error_setf(-EBADMSG, _("%s has a malformed systemd version stamp: it holds non-printable bytes."),
                                          what);

        s = strndup(start, (size_t) (end - start));
        if (!s)
                return error_setf(-ENOMEM, _("Cannot read the version of %s: out of memory."), what);
        *ret = s;
        return 0;
}
