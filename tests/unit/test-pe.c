/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The PE reader and UKI inspection: synthetic images built here byte by byte, malformed variants
 * of them, and (when installed) Debian's systemd-boot-efi binaries plus a UKI assembled from the
 * stub with objcopy the way systemd-stub(7) describes. No root needed. */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "fileio.h"
#include "pe.h"
#include "tests.h"

#define E_LFANEW 0x80
#define FILE_ALIGNMENT 0x200
#define SECTION_ALIGNMENT 0x1000
#define OPT_SIZE_PE32PLUS 240 /* 112 bytes of fields + 16 data directories */
#define OPT_SIZE_PE32 224

#define KERNEL_BANNER "6.1.0-99-test (builder@example.org) (gcc 12.2.0) #1 SMP PREEMPT_DYNAMIC Debian 6.1.99-1"
#define KERNEL_RELEASE "6.1.0-99-test"

#define OS_RELEASE_FULL                                 \
        "NAME=\"Imprint Test OS\"\n"                    \
        "ID=imprinttest\n"                              \
        "PRETTY_NAME=\"Imprint Test OS 1.0 (synthetic)\"\n" \
        "IMAGE_ID=imprint-test\n"                       \
        "IMAGE_VERSION=1.0.3\n"                         \
        "VERSION=\"1.0 (synthetic)\"\n"                 \
        "VERSION_ID=1.0\n"                              \
        "BUILD_ID=20250101\n"

#define PCRPKEY_PEM                                             \
        "-----BEGIN PUBLIC KEY-----\n"                          \
        "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEu1mOg9dwzO8x3R1Y\n" \
        "-----END PUBLIC KEY-----\n"

typedef struct TestSection {
        const char *name;           /* up to 8 characters; 8 leaves no NUL on disk */
        const void *data;
        size_t size;
        uint32_t virtual_size;      /* 0: size */
} TestSection;

typedef struct TestPe {
        uint16_t magic;             /* 0: PE32+ */
        uint16_t subsystem;         /* 0: EFI application */
        uint16_t machine;           /* 0: x86-64 */
        const TestSection *sections;
        size_t n_sections;
} TestPe;

static void put_le16(uint8_t *p, uint16_t v) {
        p[0] = (uint8_t) v;
        p[1] = (uint8_t) (v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v) {
        for (unsigned i = 0; i < 4; i++)
                p[i] = (uint8_t) (v >> (8 * i));
}

static size_t opt_size_of(uint16_t magic) {
        return magic == 0x10B ? OPT_SIZE_PE32 : OPT_SIZE_PE32PLUS;
}

static size_t section_table_offset(uint16_t magic) {
        return E_LFANEW + 4 + 20 + opt_size_of(magic);
}

/* A minimal PE image laid out as a linker would: headers, then each section's data at the next
 * file-aligned offset, padded to FileAlignment. */
static uint8_t *build_pe(const TestPe *t, size_t *ret_size) {
        uint16_t magic = t->magic ?: 0x20B;
        size_t table = section_table_offset(magic), offset, size;
        uint32_t vaddr = SECTION_ALIGNMENT;
        uint8_t *p;

        offset = ROUND_UP(table + t->n_sections * 40, FILE_ALIGNMENT);
        size = offset;
        for (size_t i = 0; i < t->n_sections; i++)
                size += ROUND_UP(t->sections[i].size, FILE_ALIGNMENT);

        p = calloc(1, size);
        ASSERT_TRUE(p);

        p[0] = 'M';
        p[1] = 'Z';
        put_le32(p + 0x3C, E_LFANEW);
        memcpy(p + E_LFANEW, "PE\0\0", 4);
        put_le16(p + E_LFANEW + 4, t->machine ?: PE_MACHINE_X86_64);
        put_le16(p + E_LFANEW + 4 + 2, (uint16_t) t->n_sections);
        put_le16(p + E_LFANEW + 4 + 16, (uint16_t) opt_size_of(magic));
        put_le16(p + E_LFANEW + 4 + 18, 0x0206); /* executable, stripped */

        uint8_t *opt = p + E_LFANEW + 24;
        put_le16(opt, magic);
        put_le32(opt + 32, SECTION_ALIGNMENT);
        put_le32(opt + 36, FILE_ALIGNMENT);
        put_le16(opt + 68, t->subsystem ?: PE_SUBSYSTEM_EFI_APPLICATION);

        for (size_t i = 0; i < t->n_sections; i++) {
                const TestSection *s = &t->sections[i];
                uint8_t *h = p + table + i * 40;
                size_t raw = ROUND_UP(s->size, FILE_ALIGNMENT);

                ASSERT_TRUE(strlen(s->name) <= 8);
                memcpy(h, s->name, strlen(s->name));
                put_le32(h + 8, s->virtual_size ?: (uint32_t) s->size);
                put_le32(h + 12, vaddr);
                put_le32(h + 16, (uint32_t) raw);
                put_le32(h + 20, (uint32_t) offset);
                memcpy(p + offset, s->data, s->size);

                offset += raw;
                vaddr += (uint32_t) ROUND_UP(MAX(raw, (size_t) 1), SECTION_ALIGNMENT);
        }
        put_le32(opt + 56, vaddr);

        *ret_size = size;
        return p;
}

/* The first 0x400 bytes of an x86 bzImage: the setup header with "HdrS" and the pointer to the
 * kernel_version string (Documentation/arch/x86/boot.rst). */
static void make_bzimage(uint8_t k[static 0x400], const char *banner) {
        memset(k, 0, 0x400);
        k[0] = 'M';
        k[1] = 'Z';
        if (!banner)
                return;
        memcpy(k + 0x202, "HdrS", 4);
        put_le16(k + 0x206, 0x020F);
        put_le16(k + 0x20E, 0x100);
        strcpy((char *) k + 0x300, banner);
}

static void assert_rejected(int r, const char *what, const char *reason) {
        if (r != -EBADMSG)
                FAIL("expected -EBADMSG for \"%s\", got %d (%s)", reason, r, error_message() ?: "no message");
        ASSERT_CONTAINS(error_message(), what);
        ASSERT_CONTAINS(error_message(), reason);
        printf("  rejected: %s\n", error_message());
        error_clear();
}

static void test_synthetic_uki(void) {
        static const char cmdline[] = "root=PARTUUID=0000 rw quiet \n\0\0"; /* trailing junk to strip */
        static const char uname[] = KERNEL_RELEASE "\n";
        static const char sbat[] = "sbat,1,SBAT Version,sbat,1,https://github.com/rhboot/shim/blob/main/SBAT.md\n";
        uint8_t kernel[0x400];
        _cleanup_(freep) uint8_t *img = NULL;
        _cleanup_(pe_file_done) PeFile pe = {};
        _cleanup_(uki_info_done) UkiInfo u = {};
        _cleanup_(freep) char *data = NULL;
        const PeSection *s;
        size_t size, n;

        make_bzimage(kernel, "5.0.0-not-this-one (x) #1");
        const TestSection sections[] = {
                { ".linux",   kernel,          sizeof(kernel) },
                { ".osrel",   OS_RELEASE_FULL, strlen(OS_RELEASE_FULL) },
                { ".cmdline", cmdline,         sizeof(cmdline) - 1 },
                { ".uname",   uname,           strlen(uname) },
                { ".sbat",    sbat,            strlen(sbat) },
                { ".pcrpkey", PCRPKEY_PEM,     strlen(PCRPKEY_PEM) },
        };
        img = build_pe(&(TestPe) { .sections = sections, .n_sections = ELEMENTSOF(sections) }, &size);

        ASSERT_OK(pe_parse(img, size, "synthetic.efi", &pe));
        ASSERT_EQ(pe.machine, PE_MACHINE_X86_64);
        ASSERT_STREQ(pe_machine_efi_arch(pe.machine), "x64");
        ASSERT_EQ(pe.subsystem, 10);
        ASSERT_TRUE(pe.pe32plus);
        ASSERT_EQ(pe.section_alignment, SECTION_ALIGNMENT);
        ASSERT_EQ(pe.n_sections, ELEMENTSOF(sections));
        for (size_t i = 0; i < ELEMENTSOF(sections); i++)
                ASSERT_STREQ(pe.sections[i].name, sections[i].name);

        /* An 8-character name fills Name[8] without a NUL. */
        s = pe_find_section(&pe, ".pcrpkey");
        ASSERT_TRUE(s);
        ASSERT_EQ(strlen(s->name), 8);
        ASSERT_TRUE(s == &pe.sections[5]);
        ASSERT_TRUE(!pe_find_section(&pe, ".pcrpke"));
        ASSERT_TRUE(!pe_find_section(&pe, ".pcrpkey2"));
        ASSERT_TRUE(!pe_find_section(&pe, ".initrd"));

        /* VirtualSize bytes, not the file-aligned SizeOfRawData. */
        s = pe_find_section(&pe, ".osrel");
        ASSERT_TRUE(s);
        ASSERT_EQ(s->raw_size, FILE_ALIGNMENT);
        ASSERT_EQ(s->virtual_size, strlen(OS_RELEASE_FULL));
        ASSERT_OK(pe_section_data(img, size, s, &data, &n));
        ASSERT_EQ(n, strlen(OS_RELEASE_FULL));
        ASSERT_STREQ(data, OS_RELEASE_FULL);

        ASSERT_OK(uki_read(img, size, "synthetic.efi", &u));
        ASSERT_STREQ(u.os_pretty_name, "Imprint Test OS 1.0 (synthetic)");
        ASSERT_STREQ(u.os_id, "imprinttest");
        ASSERT_STREQ(u.image_id, "imprint-test");
        ASSERT_STREQ(u.version, "1.0.3");
        ASSERT_STREQ(u.uname, KERNEL_RELEASE); /* .uname wins over the bzImage header */
        ASSERT_STREQ(u.cmdline, "root=PARTUUID=0000 rw quiet");
        ASSERT_TRUE(u.has_pcrpkey);
        ASSERT_FALSE(u.has_pcrsig);
        ASSERT_STREQ(u.pcrpkey, PCRPKEY_PEM);
        ASSERT_STREQ(u.sbat, sbat);
}

static void check_fallback(const char *osrel, const char *kernel_banner, const char *pretty, const char *version,
                           const char *uname) {
        uint8_t kernel[0x400];
        _cleanup_(freep) uint8_t *img = NULL;
        _cleanup_(uki_info_done) UkiInfo u = {};
        size_t size;

        make_bzimage(kernel, kernel_banner);
        const TestSection sections[] = {
                { ".osrel", osrel,  strlen(osrel) },
                { ".linux", kernel, sizeof(kernel) },
        };
        img = build_pe(&(TestPe) { .sections = sections, .n_sections = ELEMENTSOF(sections) }, &size);

        ASSERT_OK(uki_read(img, size, "fallback.efi", &u));
        if (pretty)
                ASSERT_STREQ(u.os_pretty_name, pretty);
        else
                ASSERT_TRUE(!u.os_pretty_name);
        if (version)
                ASSERT_STREQ(u.version, version);
        else
                ASSERT_TRUE(!u.version);
        if (uname)
                ASSERT_STREQ(u.uname, uname);
        else
                ASSERT_TRUE(!u.uname);
        ASSERT_TRUE(!u.cmdline);
        ASSERT_TRUE(!u.pcrpkey);
        ASSERT_FALSE(u.has_pcrpkey);
        ASSERT_TRUE(!u.sbat);
}

static void test_fallbacks(void) {
        /* Title: PRETTY_NAME, IMAGE_ID, NAME, ID. Version: IMAGE_VERSION, VERSION, VERSION_ID,
         * BUILD_ID (formats.md §2.3). Without .uname the release comes from the bzImage header. */
        check_fallback("ID=a\nNAME=\"Name A\"\nIMAGE_ID=img-a\nVERSION=\"2 (two)\"\nVERSION_ID=2\n",
                       KERNEL_BANNER, "img-a", "2 (two)", KERNEL_RELEASE);
        check_fallback("ID=a\nNAME='Name A'\nPRETTY_NAME=\nVERSION_ID=3\nBUILD_ID=b3\n",
                       KERNEL_BANNER, "Name A", "3", KERNEL_RELEASE);
        check_fallback("ID=a\nBUILD_ID=b4\n", KERNEL_BANNER, "a", "b4", KERNEL_RELEASE);
        check_fallback("# nothing useful\n", KERNEL_BANNER, NULL, NULL, KERNEL_RELEASE);

        /* No HdrS (an arm64 Image, say): no release, and no error. */
        check_fallback("ID=a\n", NULL, "a", NULL, NULL);
        /* A version string that is no kernel release is not taken. */
        check_fallback("ID=a\n", "6.1/../../x (y) #1", "a", NULL, NULL);
        /* The release is cut at the first space even without the rest of the banner. */
        check_fallback("ID=a\n", "6.9.0-rc1+", "a", NULL, "6.9.0-rc1+");
}

static void test_pe32_and_clamping(void) {
        static const char text[] = "hello";
        _cleanup_(freep) uint8_t *img = NULL;
        _cleanup_(pe_file_done) PeFile pe = {};
        _cleanup_(freep) char *data = NULL;
        const uint8_t *view;
        size_t size, n;

        /* VirtualSize beyond SizeOfRawData: the file holds only the raw part. */
        const TestSection sections[] = {
                { ".data", text, sizeof(text) - 1, 3 * FILE_ALIGNMENT },
                { ".bss",  "",   0 },
        };
        img = build_pe(&(TestPe) { .magic = 0x10B, .machine = PE_MACHINE_I386, .subsystem = 11,
                                   .sections = sections, .n_sections = ELEMENTSOF(sections) }, &size);

        ASSERT_OK(pe_parse(img, size, "pe32.efi", &pe));
        ASSERT_FALSE(pe.pe32plus);
        ASSERT_EQ(pe.machine, PE_MACHINE_I386);
        ASSERT_STREQ(pe_machine_efi_arch(pe.machine), "ia32");
        ASSERT_EQ(pe.subsystem, 11);
        ASSERT_EQ(pe.n_sections, 2);

        ASSERT_OK(pe_section_data(img, size, &pe.sections[0], &data, &n));
        ASSERT_EQ(n, FILE_ALIGNMENT);
        ASSERT_STREQ(data, "hello");
        ASSERT_OK(pe_section_view(img, size, &pe.sections[1], &view, &n));
        ASSERT_EQ(n, 0);

        ASSERT_TRUE(!pe_machine_efi_arch(0x1234));
}

static void test_malformed(void) {
        static const char osrel[] = "ID=a\n";
        uint8_t kernel[0x400];
        _cleanup_(freep) uint8_t *img = NULL, *copy = NULL;
        PeFile pe = {};
        UkiInfo u = {};
        size_t size, table = section_table_offset(0x20B);

        make_bzimage(kernel, KERNEL_BANNER);
        const TestSection sections[] = {
                { ".osrel", osrel,  strlen(osrel) },
                { ".linux", kernel, sizeof(kernel) },
        };
        img = build_pe(&(TestPe) { .sections = sections, .n_sections = ELEMENTSOF(sections) }, &size);
        copy = malloc(size);
        ASSERT_TRUE(copy);

#define RESET() memcpy(copy, img, size)

        /* Truncated to 100 bytes: e_lfanew (0x80) points past the end. Exact-size copy so that
         * valgrind sees any read beyond it. */
        {
                _cleanup_(freep) uint8_t *t = malloc(100);
                ASSERT_TRUE(t);
                memcpy(t, img, 100);
                assert_rejected(pe_parse(t, 100, "short.efi", &pe), "short.efi is not a PE file", "beyond the end");
                assert_rejected(uki_read(t, 100, "short.efi", &u), "short.efi", "e_lfanew");
                assert_rejected(pe_parse(t, 10, "tiny.efi", &pe), "tiny.efi", "shorter than a DOS header");
        }

        RESET();
        copy[0] = 'Z';
        assert_rejected(pe_parse(copy, size, "nomz.efi", &pe), "nomz.efi is not a PE file", "MZ signature");

        RESET();
        put_le32(copy + 0x3C, (uint32_t) size + 16);
        assert_rejected(pe_parse(copy, size, "lfanew.efi", &pe), "lfanew.efi", "e_lfanew");
        /* Offsets near 2^32 must not wrap around in the bounds check. */
        put_le32(copy + 0x3C, UINT32_C(0xFFFFFFF0));
        assert_rejected(pe_parse(copy, size, "lfanew.efi", &pe), "lfanew.efi", "e_lfanew");

        RESET();
        copy[E_LFANEW + 1] = 'X';
        assert_rejected(pe_parse(copy, size, "nope.efi", &pe), "nope.efi", "no PE signature");

        RESET();
        put_le16(copy + E_LFANEW + 24, 0x107);
        assert_rejected(pe_parse(copy, size, "magic.efi", &pe), "magic.efi", "optional header magic");

        RESET();
        put_le16(copy + E_LFANEW + 4 + 16, 60);
        assert_rejected(pe_parse(copy, size, "opt.efi", &pe), "opt.efi", "too short");

        RESET();
        put_le16(copy + E_LFANEW + 4 + 16, 0xFFF0);
        assert_rejected(pe_parse(copy, size, "opt.efi", &pe), "opt.efi", "optional header");

        RESET();
        put_le16(copy + E_LFANEW + 4 + 2, 97);
        assert_rejected(pe_parse(copy, size, "many.efi", &pe), "many.efi", "97 sections");

        RESET();
        put_le16(copy + E_LFANEW + 4 + 2, 90);
        assert_rejected(pe_parse(copy, size, "table.efi", &pe), "table.efi", "section table");

        /* Raw data of the second section (.linux) past the end, and at an offset near 2^32. */
        RESET();
        put_le32(copy + table + 40 + 20, (uint32_t) size - 16);
        assert_rejected(pe_parse(copy, size, "raw.efi", &pe), "raw.efi", "section .linux");
        put_le32(copy + table + 40 + 20, UINT32_C(0xFFFFFE00));
        assert_rejected(uki_read(copy, size, "raw.efi", &u), "raw.efi", "extends beyond the end");
        RESET();
        put_le32(copy + table + 40 + 16, UINT32_C(0xFFFFFFFF));
        assert_rejected(pe_parse(copy, size, "raw.efi", &pe), "raw.efi", "section .linux");

        /* Unprintable section names are not echoed raw into the message. */
        RESET();
        copy[table + 40 + 1] = '\n';
        put_le32(copy + table + 40 + 20, (uint32_t) size);
        assert_rejected(pe_parse(copy, size, "name.efi", &pe), "name.efi", "section .?inux");

        /* pe_section_view() checks on its own, for sections that did not come from pe_parse(). */
        {
                PeSection bogus = { .name = ".x", .virtual_size = 8, .raw_size = 8, .raw_offset = (uint32_t) size - 4 };
                const uint8_t *v;
                size_t n;
                char *d = NULL;

                assert_rejected(pe_section_view(img, size, &bogus, &v, &n), "Section .x", "beyond the end");
                assert_rejected(pe_section_data(img, size, &bogus, &d, &n), "Section .x", "beyond the end");
                ASSERT_TRUE(!d);
        }

        /* Valid PE files that are no UKI. */
        {
                _cleanup_(freep) uint8_t *x = NULL;
                size_t xs;
                const TestSection no_osrel[] = { { ".linux", kernel, sizeof(kernel) } };
                const TestSection no_linux[] = { { ".osrel", osrel, strlen(osrel) } };

                x = build_pe(&(TestPe) { .sections = no_osrel, .n_sections = 1 }, &xs);
                ASSERT_OK(pe_parse(x, xs, "no-osrel.efi", &pe));
                pe_file_done(&pe);
                assert_rejected(uki_read(x, xs, "no-osrel.efi", &u), "no-osrel.efi is not a unified kernel image",
                                "no .osrel section");
                free(x);

                x = build_pe(&(TestPe) { .sections = no_linux, .n_sections = 1 }, &xs);
                assert_rejected(uki_read(x, xs, "no-linux.efi", &u), "no-linux.efi is not a unified kernel image",
                                "no .linux section");
                free(x);

                x = build_pe(&(TestPe) { .subsystem = 3, .sections = sections, .n_sections = ELEMENTSOF(sections) }, &xs);
                ASSERT_OK(pe_parse(x, xs, "console.exe", &pe));
                ASSERT_EQ(pe.subsystem, 3);
                pe_file_done(&pe);
                assert_rejected(uki_read(x, xs, "console.exe", &u), "console.exe is not a unified kernel image",
                                "subsystem is 3 (Windows console)");
                free(x);

                static const char bad_uname[] = "6.1.0 evil/name\n";
                const TestSection with_bad_uname[] = {
                        { ".osrel", osrel,     strlen(osrel) },
                        { ".linux", kernel,    sizeof(kernel) },
                        { ".uname", bad_uname, strlen(bad_uname) },
                };
                x = build_pe(&(TestPe) { .sections = with_bad_uname, .n_sections = 3 }, &xs);
                assert_rejected(uki_read(x, xs, "uname.efi", &u), "uname.efi", ".uname section");
                free(x);
                x = NULL;
        }

        /* Nothing above may have filled the out-parameters. */
        ASSERT_EQ(pe.n_sections, 0);
        ASSERT_TRUE(!pe.sections);
        ASSERT_TRUE(!u.os_id && !u.version && !u.uname);
#undef RESET
}

/* Every prefix of a valid UKI, and every header byte set to a few hostile values, must give
 * success or -EBADMSG with a message: never a crash or a read outside the buffer (run under
 * valgrind, the exact-size heap copies make any over-read visible). */
static void test_truncations_and_mutations(void) {
        static const char cmdline[] = "quiet";
        static const uint8_t hostile[] = { 0x00, 0x01, 0x7F, 0x80, 0xFF };
        uint8_t kernel[0x400];
        _cleanup_(freep) uint8_t *img = NULL;
        size_t size, headers, accepted = 0;

        make_bzimage(kernel, KERNEL_BANNER);
        const TestSection sections[] = {
                { ".osrel",   OS_RELEASE_FULL, strlen(OS_RELEASE_FULL) },
                { ".cmdline", cmdline,         strlen(cmdline) },
                { ".linux",   kernel,          sizeof(kernel) },
                { ".pcrpkey", PCRPKEY_PEM,     strlen(PCRPKEY_PEM) },
        };
        img = build_pe(&(TestPe) { .sections = sections, .n_sections = ELEMENTSOF(sections) }, &size);
        headers = section_table_offset(0x20B) + ELEMENTSOF(sections) * 40;

        for (size_t len = 0; len <= size; len++) {
                _cleanup_(freep) uint8_t *t = malloc(MAX(len, (size_t) 1));
                UkiInfo u = {};
                int r;

                ASSERT_TRUE(t);
                memcpy(t, img, len);
                error_clear();
                r = uki_read(t, len, "prefix.efi", &u);
                if (r < 0) {
                        ASSERT_EQ(r, -EBADMSG);
                        ASSERT_CONTAINS(error_message(), "prefix.efi");
                } else {
                        accepted++;
                        uki_info_done(&u);
                }
        }
        /* Only prefixes holding all of the last section's raw data parse. */
        ASSERT_EQ(accepted, 1);

        for (size_t i = 0; i < headers; i++)
                for (size_t v = 0; v < ELEMENTSOF(hostile); v++) {
                        _cleanup_(freep) uint8_t *t = malloc(size);
                        UkiInfo u = {};
                        char *info = NULL;
                        int r;

                        ASSERT_TRUE(t);
                        memcpy(t, img, size);
                        t[i] = hostile[v];
                        error_clear();
                        r = uki_read(t, size, "mutant.efi", &u);
                        if (r < 0) {
                                ASSERT_EQ(r, -EBADMSG);
                                ASSERT_TRUE(error_message());
                        } else
                                uki_info_done(&u);
                        r = efi_binary_loader_info(t, size, "mutant.efi", &info);
                        ASSERT_EQ(r, -ENOENT);
                }
}

static void test_loader_info(void) {
        static const char good[] = "junk\0\x01#### LoaderInfo: systemd-boot 257.9-1~deb13u1 ####\0more";
        static const char unterminated[] = "#### LoaderInfo: systemd-boot 257";
        static const char empty[] = "#### LoaderInfo:  ####";
        static const char binary[] = "#### LoaderInfo: sd\x01 ####";
        char *v = NULL;

        ASSERT_OK(efi_binary_loader_info(good, sizeof(good) - 1, "good.efi", &v));
        ASSERT_STREQ(v, "systemd-boot 257.9-1~deb13u1");
        free(v);
        v = NULL;

        ASSERT_EQ(efi_binary_loader_info("MZ nothing here", 15, "plain.efi", &v), -ENOENT);
        ASSERT_CONTAINS(error_message(), "plain.efi");
        /* The marker must lie wholly inside the buffer. */
        ASSERT_EQ(efi_binary_loader_info(good, 10, "cut.efi", &v), -ENOENT);
        assert_rejected(efi_binary_loader_info(unterminated, strlen(unterminated), "unterminated.efi", &v),
                        "unterminated.efi", "malformed");
        assert_rejected(efi_binary_loader_info(empty, strlen(empty), "empty.efi", &v), "empty.efi", "malformed");
        assert_rejected(efi_binary_loader_info(binary, strlen(binary), "binary.efi", &v), "binary.efi", "non-printable");
        ASSERT_TRUE(!v);
}

static bool have_program(const char *name) {
        char cmd[256];

        snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", name);
        return system(cmd) == 0;
}

static int write_file(const char *dir, const char *name, const void *data, size_t size) {
        char path[512];
        FILE *f;
        size_t n;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        f = fopen(path, "we");
        if (!f)
                return -errno;
        n = fwrite(data, 1, size, f);
        if (fclose(f) != 0 || n != size)
                return -EIO;
        return 0;
}

static void check_loader_info(const char *data, size_t size, const char *what, const char *prefix) {
        _cleanup_(freep) char *v = NULL;
        unsigned long major;

        ASSERT_OK(efi_binary_loader_info(data, size, what, &v));
        printf("  %s: %s\n", what, v);
        ASSERT_TRUE(strncmp(v, prefix, strlen(prefix)) == 0);
        /* Debian bookworm ships 252; later releases only count up. */
        major = strtoul(v + strlen(prefix), NULL, 10);
        ASSERT_TRUE(major >= 252);
}

static void test_real_binaries(void) {
        static const char stub_path[] = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub";
        static const char boot_path[] = "/usr/lib/systemd/boot/efi/systemd-bootx64.efi";
        static const char osrel[] = "NAME=\"Imprint Real UKI\"\nID=imprintreal\nVERSION_ID=42\n";
        static const char cmdline[] = "rw quiet imprint.test=1\n";
        _cleanup_(freep) char *stub = NULL, *boot = NULL, *uki = NULL, *cmdline_data = NULL;
        _cleanup_(pe_file_done) PeFile stub_pe = {}, boot_pe = {};
        _cleanup_(uki_info_done) UkiInfo u = {};
        const PeSection *s;
        size_t stub_size, boot_size, uki_size, n;
        uint8_t kernel[0x400];
        char dir[] = "/tmp/test-pe.XXXXXX", cmd[2048];
        int r;

        if (access(stub_path, R_OK) < 0 || access(boot_path, R_OK) < 0) {
                printf("NOTE: systemd-boot-efi is not installed; skipping the real-binary checks.\n");
                return;
        }

        ASSERT_OK(read_full_file(stub_path, &stub, &stub_size));
        ASSERT_OK(read_full_file(boot_path, &boot, &boot_size));

        ASSERT_OK(pe_parse(stub, stub_size, stub_path, &stub_pe));
        ASSERT_EQ(stub_pe.subsystem, PE_SUBSYSTEM_EFI_APPLICATION);
        ASSERT_TRUE(stub_pe.pe32plus);
        ASSERT_EQ(stub_pe.machine, PE_MACHINE_X86_64);
        s = pe_find_section(&stub_pe, ".sdmagic");
        ASSERT_TRUE(s);
        {
                _cleanup_(freep) char *magic = NULL;

                ASSERT_OK(pe_section_data(stub, stub_size, s, &magic, NULL));
                ASSERT_CONTAINS(magic, "#### LoaderInfo: systemd-stub ");
        }
        ASSERT_TRUE(pe_find_section(&stub_pe, ".sbat"));
        check_loader_info(stub, stub_size, stub_path, "systemd-stub ");

        ASSERT_OK(pe_parse(boot, boot_size, boot_path, &boot_pe));
        ASSERT_EQ(boot_pe.subsystem, PE_SUBSYSTEM_EFI_APPLICATION);
        ASSERT_TRUE(pe_find_section(&boot_pe, ".sdmagic"));
        ASSERT_TRUE(pe_find_section(&boot_pe, ".osrel"));
        check_loader_info(boot, boot_size, boot_path, "systemd-boot ");

        /* Neither is a UKI: the stub has no .linux, nor does sd-boot (which has an .osrel). */
        assert_rejected(uki_read(stub, stub_size, stub_path, &u), "not a unified kernel image", "no .linux section");
        assert_rejected(uki_read(boot, boot_size, boot_path, &u), "not a unified kernel image", "no .linux section");

        if (!have_program("objcopy")) {
                printf("NOTE: objcopy (binutils) is not installed; skipping the assembled-UKI check.\n");
                return;
        }

        ASSERT_TRUE(mkdtemp(dir));
        make_bzimage(kernel, KERNEL_BANNER);
        ASSERT_OK(write_file(dir, "os-release", osrel, strlen(osrel)));
        ASSERT_OK(write_file(dir, "cmdline", cmdline, strlen(cmdline)));
        ASSERT_OK(write_file(dir, "vmlinuz", kernel, sizeof(kernel)));

        /* systemd-stub(7): the VMAs lie past the stub's own sections (SizeOfImage). */
        ASSERT_TRUE(stub_pe.size_of_image <= 0x20000);
        snprintf(cmd, sizeof(cmd),
                 "objcopy "
                 "--add-section .osrel='%1$s/os-release' --change-section-vma .osrel=0x20000 "
                 "--add-section .cmdline='%1$s/cmdline' --change-section-vma .cmdline=0x30000 "
                 "--add-section .linux='%1$s/vmlinuz' --change-section-vma .linux=0x2000000 "
                 "'%2$s' '%1$s/uki.efi'",
                 dir, stub_path);
        r = system(cmd);
        if (r != 0)
                FAIL("%s: exit status %d", cmd, r);

        snprintf(cmd, sizeof(cmd), "%s/uki.efi", dir);
        ASSERT_OK(read_full_file(cmd, &uki, &uki_size));
        ASSERT_OK(uki_read(uki, uki_size, "uki.efi", &u));
        ASSERT_STREQ(u.os_pretty_name, "Imprint Real UKI");
        ASSERT_STREQ(u.os_id, "imprintreal");
        ASSERT_TRUE(!u.image_id);
        ASSERT_STREQ(u.version, "42");
        ASSERT_STREQ(u.uname, KERNEL_RELEASE);
        ASSERT_STREQ(u.cmdline, "rw quiet imprint.test=1");
        ASSERT_FALSE(u.has_pcrsig);
        ASSERT_FALSE(u.has_pcrpkey);
        ASSERT_CONTAINS(u.sbat, "sbat,1,"); /* inherited from the stub */
        check_loader_info(uki, uki_size, "uki.efi", "systemd-stub ");

        /* objcopy pads .cmdline to FileAlignment; the reader returns VirtualSize bytes. */
        {
                _cleanup_(pe_file_done) PeFile pe = {};

                ASSERT_OK(pe_parse(uki, uki_size, "uki.efi", &pe));
                s = pe_find_section(&pe, ".cmdline");
                ASSERT_TRUE(s);
                ASSERT_TRUE(s->raw_size > s->virtual_size);
                ASSERT_OK(pe_section_data(uki, uki_size, s, &cmdline_data, &n));
                ASSERT_EQ(n, strlen(cmdline));
                ASSERT_STREQ(cmdline_data, cmdline);
                printf("  uki.efi: %zu sections, .linux at 0x%" PRIx32 "\n", pe.n_sections,
                       pe_find_section(&pe, ".linux")->virtual_address);
        }

        static const char *const files[] = { "os-release", "cmdline", "vmlinuz", "uki.efi" };
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                snprintf(cmd, sizeof(cmd), "%s/%s", dir, files[i]);
                ASSERT_TRUE(unlink(cmd) == 0);
        }
        ASSERT_TRUE(rmdir(dir) == 0);
}

int main(void) {
        printf("synthetic UKI\n");
        test_synthetic_uki();
        printf("os-release and kernel release fallbacks\n");
        test_fallbacks();
        printf("PE32 and VirtualSize clamping\n");
        test_pe32_and_clamping();
        printf("malformed input\n");
        test_malformed();
        printf("truncations and mutations\n");
        test_truncations_and_mutations();
        printf("LoaderInfo stamps\n");
        test_loader_info();
        printf("real systemd-boot-efi binaries\n");
        test_real_binaries();
        printf("OK\n");
        return 0;
}
