/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The command line: subcommands, options and output. A front end of the install session
 * (session.h), like --plain (plain.c) and the full-screen installer (ui/); exit codes are the
 * session's (session_exit_code(), documented in imprint(1)). */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "dialogue.h"
#include "plain.h"
#include "config-record.h"
#include "session.h"
#include "tui.h"
#include "varlink-installer.h"
#include "error.h"
#include "escrow.h"
#include "firmware.h"
#include "i18n-frontend.h"
#include "interrupt.h"
#include "log.h"
#include "plan.h"
#include "proc-cmdline.h"
#include "machine.h"
#include "record.h"
#include "report.h"
#include "size.h"
#include "terminal.h"
#include "validate.h"

enum {
        EXIT_OK = 0,
        EXIT_USAGE = 2,
};

static bool arg_json = false;  /* machine-readable output */
static bool arg_yes = false;   /* confirmed in advance */
static int arg_verbose = 0;

static void set_verbosity(void) {
        log_set_max_level(arg_verbose >= 2 ? LOG_DEBUG : arg_verbose == 1 ? LOG_INFO : LOG_WARNING);
}

/* Prints the sentence recorded for r on stderr and returns the exit status for it. */
static int fail(int r) {
        fprintf(stderr, "imprint: %s\n", session_error_message(r));
        return session_exit_code(r);
}

/* The command being run ("install"), for the hint after a usage error. */
static const char *arg_verb = NULL;

static int usage_error(const char *fmt, ...) _printf_(1, 2);
static int usage_error(const char *fmt, ...) {
        va_list ap;

        fprintf(stderr, "imprint%s%s: ", arg_verb ? " " : "", arg_verb ?: "");
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, "\nTry 'imprint%s%s --help'.\n", arg_verb ? " " : "", arg_verb ?: "");
        return EXIT_USAGE;
}

/* What getopt_long() returned instead of an option: '?' (unknown option, or a value given to an
 * option that takes none) or ':' (a value missing; the option strings start with ':'). getopt's
 * own messages are off (opterr = 0): they name the verb as if it were the program. */
static int option_error(int c, char *argv[]) {
        const char *arg = optind > 0 ? argv[optind - 1] : "";
        bool is_long = strncmp(arg, "--", 2) == 0;
        int len = (int) strcspn(arg, "=");

        if (c == ':') {
                if (is_long)
                        return usage_error("option %.*s needs a value.", len, arg);
                return usage_error("option -%c needs a value.", optopt);
        }
        if (is_long && optopt != 0 && arg[len] == '=')
                return usage_error("option %.*s takes no value.", len, arg);
        if (is_long || optopt == 0)
                return usage_error("unknown option \"%.*s\".", len, arg);
        return usage_error("unknown option \"-%c\".", optopt);
}

static void print_json(json_object *j) {
        puts(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE));
}

static void help(void) {
        printf("imprint " IMPRINT_VERSION " — install an OS image onto a disk\n\n"
               "Usage:\n"
               "  imprint [-v] disks [--json] [--no-probe] [DISK|FILE…]\n"
               "  imprint plan  --target DISK|FILE [LAYOUT OPTIONS] [--plan-file FILE] [--json]\n"
               "  imprint apply --plan-file FILE [--yes] [--json]\n"
               "  imprint apply --target DISK|FILE [LAYOUT OPTIONS] [--yes] [--json]\n"
               "  imprint install --source IMAGE --target DISK|FILE [LAYOUT OPTIONS] [--yes] [--json] [--no-variables]\n"
               "  imprint install --plan-file FILE [--yes] [--json] [--no-variables]\n"
               "  imprint reset [DISK|FILE] [--keep-home] [--secure-erase] [--tpm-clear] [--source IMAGE]\n"
               "                [--user NAME …] [--recovery-key-escrow DIR [--recovery-key-escrow-certificate PEM]]\n"
               "                [--entry-point=boot-menu|live-medium]\n"
               "                [--yes] [--json] [--dry-run]\n"
               "  imprint unattended [--config FILE] [--entry-point=boot-menu|live-medium]\n"
               "  imprint tpm [--json] [--tcti TCTI]\n"
               "  imprint firmware [--json]\n"
               "  imprint --plain [--reset] [--source IMAGE] [--lang L] [--record FILE]\n"
               "  imprint [--tui [--reset] [--source IMAGE] [--seed S] [--log FILE] [--lang L] [--mono] [--allow-weak-password] [--record FILE] [DISK|FILE…]]\n"
               "  imprint --console [--reset]\n"
               "  imprint --varlink [--listen=PATH]\n\n"
               "Commands:\n"
               "  disks    List the disks, what is on them, and whether they can be a target\n"
               "  plan     Show (and optionally save) the partition layout for a target; writes nothing\n"
               "  apply    Write the partition table and filesystems of a plan to its target\n"
               "  install  Install an OS image (a Discoverable Disk Image with UKIs): partition, copy,\n"
               "           verify, and make the target boot with systemd-boot\n"
               "  reset    Factory reset of a disk imprint installed: root (and home) crypto-erased and\n"
               "           made new with new keys; the ESP, the usr slots and vendor partitions kept;\n"
               "           --keep-home keeps home's files; --dry-run shows what is erased and kept\n"
               "  unattended  Install (or reset) as a JSON configuration says (--config, the credential\n"
               "           imprint.config, or imprint.config=PATH on the kernel command line),\n"
               "           printing JSON progress; for OEM lines and test rigs\n"
               "  tpm      Check whether this machine's TPM 2.0 can hold a disk key, and say why not\n"
               "  firmware Show the firmware's Secure Boot state: the mode, and the keys and hashes\n"
               "           enrolled in PK, KEK, db and dbx ($IMPRINT_EFIVARFS: another efivarfs copy)\n"
               "  --plain  A line-by-line installer dialogue (serial consoles, screen readers); --lang=en|de|fr\n"
               "  --tui    The full-screen installer (also: imprint with no arguments on a terminal);\n"
               "           --log=FILE, --lang=en|de|fr, --mono; named DISKs or FILEs are the only targets\n"
               "  --console  --tui on a virtual console or pseudo terminal, --plain on a serial line,\n"
               "           unless imprint.frontend[.TTY]=tui|plain on the kernel command line says otherwise\n"               "  --reset  With --plain, --tui or --console: straight to \"Reset an installed system\"\n"
               "           (what the recovery entry runs) instead of offering install or reset first\n"
               "  --record FILE  With --plain or --tui: after the install, write the configuration for\n"
               "           imprint unattended that repeats it (no secrets: it names the credentials)\n"
               "  --varlink  Serve the Varlink interface io.imprint.Installer (imprint-varlink(7)) on the\n"
               "           sockets systemd passed (imprint-varlink.socket), or on --listen=PATH\n\n"
               "Layout options:\n"
               "  --erase                 Replace everything on the disk (default)\n"
               "  --free                  Keep existing partitions; use the largest free region\n"
               "  --esp-size=SIZE         Size of a new ESP (default 1G)\n"
               "  --xbootldr-size=SIZE    Size of the XBOOTLDR partition added beside a small ESP (default 1G)\n"
               "  --root-size=SIZE|rest   Root partition size (default: the rest)\n"
               "  --home-size=SIZE|rest|none  Home partition (default none)\n"
               "  --swap-size=SIZE|none   Swap partition (default none)\n"
               "  --root-fs=FS --home-fs=FS   ext4 (default), btrfs or xfs\n"
               "  --root-label=LABEL      GPT name of the root partition\n"
               "  --architecture=ARCH     x86-64, arm64, x86, riscv64 (default: this machine's)\n"
               "  --seed=STRING           Derive all UUIDs from STRING (reproducible layouts)\n\n"
               "Encryption options (root and home are LUKS2 volumes on disks by default):\n"
               "  --encrypt --no-encrypt  Encrypt root and home, or not\n"
               "  --tpm2=auto|required|off  Unlock through the TPM2 when it passes the pre-flight check\n"
               "                          (auto, default), refuse without one (required), or never\n"
               "  --tpm2-pcrs=PCRS        PCRs the TPM2 key is bound to (default 7)\n"
               "  --tpm2-signed-pcr11     Also bind to PCR 11 through the UKI's .pcrpkey (signed policy)\n"
               "  --tpm2-pin              The TPM2 asks for a PIN at boot (asked for now)\n"
               "  --passphrase            Add a passphrase that opens the disk (asked for now)\n"
               "  --tcti=TCTI             The TPM to use (default: the kernel's /dev/tpmrm0)\n"
               "  --recovery-key-escrow=DIR  Write the recovery key to DIR instead of showing it\n"
               "  --recovery-key-escrow-certificate=PEM  Encrypt it there to this certificate or public key\n"
               "                          (CMS; openssl cms -decrypt recovers it)\n\n"
               "Account and first-boot settings (install):\n"
               "  --user=NAME             Create this account (password: credential imprint.user-password,\n"
               "                          or asked on the terminal); systemd-homed where possible\n"
               "  --real-name=NAME --admin --auto-login\n"
               "  --user-storage=luks|directory|subvolume  Storage of a systemd-homed account (default luks)\n"
               "  --classic-user          An /etc/passwd user even where systemd-homed could be used\n"
               "  --allow-weak-password   Accept a password libpwquality refuses (tests, kiosks)\n"
               "  --hostname=NAME --timezone=ZONE --locale=LOCALE --keymap=MAP\n\n"
               "Other options:\n"
               "  --source=IMAGE|self|URL The OS image to install (plan, install); \"self\": the disk\n"
               "                          this system runs from (a live medium installing itself);\n"
               "                          a .raw.zst/.raw.xz file or an http(s):// URL is streamed\n"
               "  --image-key=FILE        Public key (PEM, or OpenPGP) SHA256SUMS beside the image must\n"
               "                          be signed with (SHA256SUMS.sig / .gpg); required for URLs\n"
               "  --image-certificate=FILE  PEM certificate the usr image's verity signature must verify against\n"
               "  --no-variables          Do not add a firmware boot entry (EFI variable)\n"
               "  --allow-unbootable      Install even when Secure Boot would not start the image\n"

               "  --plan-file=FILE        plan: save the plan there; apply/install: execute exactly that plan\n"
               "  --json                  Machine-readable output (apply: one JSON object per progress event)\n"
               "  -y --yes                Do not ask for confirmation before writing\n"
               "  -v --verbose            Log what is done (twice: debug)\n"
               "  -h --help  --version\n\n"
               "SIZE takes K, M, G, T suffixes (powers of 1024). See imprint(1) for exit codes.\n");
}

/* ---- disks ------------------------------------------------------------------------------ */

/* The newest reset audit record on the ESP of d, a disk imprint installed (record.h), or NULL. */
static json_object *last_reset_json(const Disk *d) {
        json_object *j = NULL;
        _cleanup_(freep) char *name = NULL;

        for (size_t i = 0; i < d->n_partitions; i++) {
                const DiskPartition *p = &d->partitions[i];
                FsLocation esp = {
                        .disk = d->devnode ?: d->path,
                        .node = p->node,
                        .offset = p->start,
                        .fstype = "vfat",
                };

                if (!p->dps || p->dps->role != ROLE_ESP)
                        continue;
                if (record_reset_last(&esp, &j, &name) >= 0)
                        return j;
        }
        error_clear();
        return NULL;
}

/* What a reset would make of d (imprint's installs only): its last reset, or that one was cut off. */
static void print_disk_reset(Session *s, const Disk *d) {
        const ResetTarget *t = NULL;

        if (session_reset_target(s, d, &t) < 0 || !t || !t->record) {
                error_clear();
                return;
        }
        if (t->refusal)
                printf("    installed by imprint, but cannot be reset: %s\n", t->refusal);
        else
                printf("    installed by imprint %s on %s: imprint reset %s resets it\n", t->record->imprint_version ?: "?",
                       t->record->installed_at ?: "?", d->path);
        if (t->last_reset)
                printf("    last reset: %s\n", t->last_reset);
        else if (t->interrupted)
                printf("    last reset: interrupted: it does not start as it is; run imprint reset again\n");
}

/* The lines under the disk's row of disk_list_table(). */
static void print_disk(const Disk *d) {
        if (d->by_id && d->by_id[0])
                printf("    id: %s\n", d->by_id[0]);
        if (d->diskseq)
                printf("    diskseq: %" PRIu64 ", sectors: %" PRIu32 "/%" PRIu32 " bytes%s%s\n", d->diskseq, d->logical_sector_size,
                       d->physical_sector_size, d->rotational ? ", rotational" : "", d->removable ? ", removable" : "");
        for (size_t i = 0; i < d->n_partitions; i++) {
                const DiskPartition *p = &d->partitions[i];
                printf("    %2u %10s  %-22s %-16.16s %-8s %s\n", p->partno, FORMAT_BYTES(p->size),
                       p->dps ? p->dps->name : (p->type_string ?: "-"), p->label ?: "-", p->fstype ?: "-",
                       p->uuid_string ?: "");
        }
        for (size_t i = 0; d->installed && d->installed[i]; i++)
                printf("    installed: %s\n", d->installed[i]);
        if (!disk_is_usable(d))
                printf("    not usable: %s\n", d->refusal_text ?: "unknown reason");
}

static int verb_disks(int argc, char *argv[]) {
        static const struct option options[] = {
                { "json", no_argument, NULL, 'j' },
                { "no-probe", no_argument, NULL, 'n' },
                { "verbose", no_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        DiscoverOptions o = { .probe_os = true };
        _cleanup_(session_freep) Session *s = NULL;
        _cleanup_(table_freep) Table *table = NULL;
        DiskList l;
        char **lines = NULL;
        size_t n_lines = 0;
        int c, r;

        while ((c = getopt_long(argc, argv, ":hv", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return EXIT_OK;
                case 'v':
                        arg_verbose++;
                        set_verbosity();
                        break;
                case 'j':
                        arg_json = true;
                        break;
                case 'n':
                        o.probe_os = false;
                        break;
                default:
                        return option_error(c, argv);
                }
        /* Named disks or image files: describe just those. */
        r = session_new(&s);
        if (r >= 0)
                r = session_set_targets(s, argv + optind, (size_t) (argc - optind));
        if (r >= 0)
                r = session_discover(s, o.probe_os);
        if (r < 0)
                return fail(r);
        l = *session_disks(s); /* the session's */

        r = disk_list_table(&l, &table);
        if (r >= 0 && arg_json) {
                json_object *a = table_to_json(table);
                /* A disk imprint installed: its last reset's audit record (reading the ESP is
                 * probing, so not with --no-probe). */
                for (size_t i = 0; o.probe_os && i < l.n_disks && i < json_object_array_length(a); i++) {
                        const ResetTarget *t = NULL;
                        json_object *j;

                        if (session_reset_target(s, l.disks[i], &t) < 0 || !t->record) {
                                error_clear();
                                continue;
                        }
                        j = last_reset_json(l.disks[i]);
                        if (j)
                                json_object_object_add(json_object_array_get_idx(a, i), "lastReset", j);
                }
                print_json(a);
                json_object_put(a);
        } else if (r >= 0 && (r = table_format_lines(table, &lines, &n_lines)) >= 0) {
                puts(lines[0]);
                for (size_t i = 0; i < l.n_disks && i + 1 < n_lines; i++) {
                        puts(lines[i + 1]);
                        print_disk(l.disks[i]);
                        if (o.probe_os)
                                print_disk_reset(s, l.disks[i]);
                }
                table_free_lines(lines, n_lines);
        }
        return r < 0 ? fail(r) : EXIT_OK;
}

/* ---- plan options shared by plan and apply ---------------------------------------------- */

enum {
        OPT_JSON = 0x100,
        OPT_TARGET,
        OPT_PLAN_FILE,
        OPT_ERASE,
        OPT_FREE,
        OPT_ESP_SIZE,
        OPT_XBOOTLDR_SIZE,
        OPT_ROOT_SIZE,
        OPT_HOME_SIZE,
        OPT_SWAP_SIZE,
        OPT_ROOT_FS,
        OPT_HOME_FS,
        OPT_ROOT_LABEL,
        OPT_ARCH,
        OPT_SEED,
        OPT_SOURCE,
        OPT_NO_VARIABLES,
        OPT_ALLOW_UNBOOTABLE,
        OPT_ENCRYPT,
        OPT_NO_ENCRYPT,
        OPT_TPM2,
        OPT_TPM2_PCRS,
        OPT_TPM2_SIGNED_PCR11,
        OPT_TPM2_PIN,
        OPT_PASSPHRASE,
        OPT_TCTI,
        OPT_RECOVERY_KEY_ESCROW,
        OPT_RECOVERY_KEY_ESCROW_CERTIFICATE,
        OPT_USER,
        OPT_REAL_NAME,
        OPT_USER_STORAGE,
        OPT_ADMIN,
        OPT_AUTO_LOGIN,
        OPT_CLASSIC_USER,
        OPT_ALLOW_WEAK_PASSWORD,
        OPT_HOSTNAME,
        OPT_TIMEZONE,
        OPT_LOCALE,
        OPT_KEYMAP,
        OPT_IMAGE_CERTIFICATE,
        OPT_IMAGE_KEY,
        OPT_KEEP_HOME,
        OPT_SECURE_ERASE,
        OPT_TPM_CLEAR,
        OPT_ENTRY_POINT,
        OPT_DRY_RUN,
};

static const struct option plan_options[] = {
        { "json", no_argument, NULL, OPT_JSON },
        { "target", required_argument, NULL, OPT_TARGET },
        { "plan-file", required_argument, NULL, OPT_PLAN_FILE },
        { "erase", no_argument, NULL, OPT_ERASE },
        { "free", no_argument, NULL, OPT_FREE },
        { "esp-size", required_argument, NULL, OPT_ESP_SIZE },
        { "xbootldr-size", required_argument, NULL, OPT_XBOOTLDR_SIZE },
        { "root-size", required_argument, NULL, OPT_ROOT_SIZE },
        { "home-size", required_argument, NULL, OPT_HOME_SIZE },
        { "swap-size", required_argument, NULL, OPT_SWAP_SIZE },
        { "root-fs", required_argument, NULL, OPT_ROOT_FS },
        { "home-fs", required_argument, NULL, OPT_HOME_FS },
        { "root-label", required_argument, NULL, OPT_ROOT_LABEL },
        { "architecture", required_argument, NULL, OPT_ARCH },
        { "seed", required_argument, NULL, OPT_SEED },
        { "source", required_argument, NULL, OPT_SOURCE },
        { "no-variables", no_argument, NULL, OPT_NO_VARIABLES },
        { "allow-unbootable", no_argument, NULL, OPT_ALLOW_UNBOOTABLE },
        { "encrypt", no_argument, NULL, OPT_ENCRYPT },
        { "no-encrypt", no_argument, NULL, OPT_NO_ENCRYPT },
        { "tpm2", required_argument, NULL, OPT_TPM2 },
        { "tpm2-pcrs", required_argument, NULL, OPT_TPM2_PCRS },
        { "tpm2-signed-pcr11", no_argument, NULL, OPT_TPM2_SIGNED_PCR11 },
        { "tpm2-pin", no_argument, NULL, OPT_TPM2_PIN },
        { "passphrase", no_argument, NULL, OPT_PASSPHRASE },
        { "tcti", required_argument, NULL, OPT_TCTI },
        { "recovery-key-escrow", required_argument, NULL, OPT_RECOVERY_KEY_ESCROW },
        { "recovery-key-escrow-certificate", required_argument, NULL, OPT_RECOVERY_KEY_ESCROW_CERTIFICATE },
        { "user", required_argument, NULL, OPT_USER },
        { "real-name", required_argument, NULL, OPT_REAL_NAME },
        { "user-storage", required_argument, NULL, OPT_USER_STORAGE },
        { "admin", no_argument, NULL, OPT_ADMIN },
        { "auto-login", no_argument, NULL, OPT_AUTO_LOGIN },
        { "classic-user", no_argument, NULL, OPT_CLASSIC_USER },
        { "allow-weak-password", no_argument, NULL, OPT_ALLOW_WEAK_PASSWORD },
        { "hostname", required_argument, NULL, OPT_HOSTNAME },
        { "timezone", required_argument, NULL, OPT_TIMEZONE },
        { "locale", required_argument, NULL, OPT_LOCALE },
        { "keymap", required_argument, NULL, OPT_KEYMAP },
        { "image-certificate", required_argument, NULL, OPT_IMAGE_CERTIFICATE },
        { "image-key", required_argument, NULL, OPT_IMAGE_KEY },
        { "yes", no_argument, NULL, 'y' },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        {},
};

typedef struct PlanArgs {
        const char *target;
        const char *source;
        const char *image_certificate;
        const char *image_key;
        bool no_variables;
        bool allow_unbootable;
        const char *plan_file;
        bool layout_given;
        PlanOptions opts;
        EncryptRequest enc;
        const char *escrow_dir;
        const char *escrow_certificate;
        AccountRequest account;
        bool allow_weak_password;
        PlanSettings settings;   /* strings point into argv */
        bool help;
} PlanArgs;

/* An option's value through the check every loader of that field uses (validate.h). */
static int check_option(const char *name, int (*validate)(const char *), const char *value) {
        int r = validate(value);

        if (r < 0)
                return usage_error("--%s: %s", name, session_error_message(r));
        return 0;
}

/* --recovery-key-escrow-certificate: refused now, before anything is planned, when the key cannot
 * be encrypted to it (escrow.h). */
static int check_escrow_certificate(const char *value) {
        int r = escrow_check_certificate(value, "--recovery-key-escrow-certificate");

        if (r < 0)
                return usage_error("%s", session_error_message(r));
        return 0;
}

/* --recovery-key-escrow-certificate says how the key is written to --recovery-key-escrow's directory. */
static int check_escrow_options(const char *dir, const char *certificate) {
        if (certificate && !dir)
                return usage_error("--recovery-key-escrow-certificate needs --recovery-key-escrow=DIR, the directory the "
                                   "encrypted recovery key is written to.");
        return 0;
}

/* The options of the account and the settings, which install, plan and reset share. Returns 1
 * when c was one of them (*r: 0, or the usage error's exit code), 0 when it was not. */
static int parse_account_option(int c, char *arg, AccountRequest *acc, PlanSettings *set, bool *allow_weak, int *r) {
        *r = 0;
        switch (c) {
        case OPT_USER:
                *r = check_option("user", validate_user_name, arg);
                acc->user_name = arg;
                return 1;
        case OPT_REAL_NAME:
                *r = check_option("real-name", validate_real_name, arg);
                acc->real_name = arg;
                return 1;
        case OPT_USER_STORAGE:
                acc->storage = account_storage_from_string(arg);
                if (acc->storage < 0)
                        *r = usage_error("--user-storage: \"%s\" is not one of luks, directory, subvolume.", arg);
                return 1;
        case OPT_ADMIN:
                acc->admin = true;
                return 1;
        case OPT_AUTO_LOGIN:
                acc->auto_login = true;
                return 1;
        case OPT_CLASSIC_USER:
                acc->classic = true;
                return 1;
        case OPT_ALLOW_WEAK_PASSWORD:
                *allow_weak = true;
                return 1;
        case OPT_HOSTNAME:
                *r = check_option("hostname", validate_hostname, arg);
                set->hostname = arg;
                return 1;
        case OPT_TIMEZONE:
                *r = check_option("timezone", validate_timezone, arg);
                set->timezone = arg;
                return 1;
        case OPT_LOCALE:
                *r = check_option("locale", validate_locale, arg);
                set->locale = arg;
                return 1;
        case OPT_KEYMAP:
                *r = check_option("keymap", validate_keymap, arg);
                set->keymap = arg;
                return 1;
        default:
                return 0;
        }
}

static int parse_size_option(const char *name, const char *value, SizeRequest *ret) {
        if (size_request_parse(value, ret) < 0)
                return usage_error("--%s: invalid size \"%s\" (use e.g. 512M, 20G, \"rest\" or \"none\").", name, value);
        return 0;
}

static int parse_plan_args(int argc, char *argv[], PlanArgs *a) {
        int c, r = 0;

        plan_options_init(&a->opts);
        encrypt_request_init(&a->enc);
        while ((c = getopt_long(argc, argv, ":hyv", plan_options, NULL)) >= 0) {
                if ((c >= OPT_ERASE && c <= OPT_SEED) || (c >= OPT_ENCRYPT && c <= OPT_TCTI) ||
                    (c >= OPT_USER && c <= OPT_KEYMAP && c != OPT_ALLOW_WEAK_PASSWORD))
                        a->layout_given = true;
                switch (c) {
                case OPT_ENCRYPT:
                        a->enc.encrypt = 1;
                        break;
                case OPT_NO_ENCRYPT:
                        a->enc.encrypt = 0;
                        break;
                case OPT_TPM2:
                        a->enc.tpm2 = tpm2_use_from_string(optarg);
                        if (a->enc.tpm2 < 0)
                                return usage_error("--tpm2: \"%s\" is not one of auto, required, off.", optarg);
                        break;
                case OPT_TPM2_PCRS:
                        if (pcr_mask_parse(optarg, &a->enc.tpm2_pcrs) < 0)
                                return usage_error("--tpm2-pcrs: \"%s\" is not a list of PCRs such as 7 or 0+7.", optarg);
                        break;
                case OPT_TPM2_SIGNED_PCR11:
                        a->enc.tpm2_signed_pcr11 = true;
                        break;
                case OPT_TPM2_PIN:
                        a->enc.tpm2_pin = true;
                        break;
                case OPT_PASSPHRASE:
                        a->enc.passphrase = true;
                        break;
                case OPT_TCTI:
                        r = check_option("tcti", validate_tpm2_tcti, optarg);
                        a->enc.tpm2_tcti = optarg;
                        break;
                case OPT_RECOVERY_KEY_ESCROW:
                        a->escrow_dir = optarg;
                        break;
                case OPT_RECOVERY_KEY_ESCROW_CERTIFICATE:
                        r = check_escrow_certificate(optarg);
                        a->escrow_certificate = optarg;
                        break;
                case OPT_JSON:
                        arg_json = true;
                        break;
                case 'y':
                        arg_yes = true;
                        break;
                case 'v':
                        arg_verbose++;
                        set_verbosity();
                        break;
                case 'h':
                        a->help = true;
                        break;
                case OPT_TARGET:
                        a->target = optarg;
                        break;
                case OPT_SOURCE:
                        a->source = optarg;
                        break;
                case OPT_IMAGE_CERTIFICATE:
                        a->image_certificate = optarg;
                        break;
                case OPT_IMAGE_KEY:
                        a->image_key = optarg;
                        break;
                case OPT_NO_VARIABLES:
                        a->no_variables = true;
                        break;
                case OPT_ALLOW_UNBOOTABLE:
                        a->allow_unbootable = true;
                        break;
                case OPT_PLAN_FILE:
                        a->plan_file = optarg;
                        break;
                case OPT_ERASE:
                        a->opts.mode = PLAN_ERASE;
                        break;
                case OPT_FREE:
                        a->opts.mode = PLAN_FREE;
                        break;
                case OPT_ESP_SIZE:
                        r = parse_size_option("esp-size", optarg, &a->opts.esp);
                        break;
                case OPT_XBOOTLDR_SIZE:
                        r = parse_size_option("xbootldr-size", optarg, &a->opts.xbootldr);
                        break;
                case OPT_ROOT_SIZE:
                        r = parse_size_option("root-size", optarg, &a->opts.root);
                        if (r == 0 && a->opts.root.kind == SIZE_NONE)
                                r = usage_error("--root-size: the root partition cannot be left out.");
                        break;
                case OPT_HOME_SIZE:
                        r = parse_size_option("home-size", optarg, &a->opts.home);
                        break;
                case OPT_SWAP_SIZE:
                        r = parse_size_option("swap-size", optarg, &a->opts.swap);
                        break;
                case OPT_ROOT_FS:
                        a->opts.root_fs = optarg;
                        break;
                case OPT_HOME_FS:
                        a->opts.home_fs = optarg;
                        break;
                case OPT_ROOT_LABEL:
                        r = check_option("root-label", validate_partition_label, optarg);
                        a->opts.root_label = optarg;
                        break;
                case OPT_ARCH:
                        a->opts.arch = architecture_from_string(optarg);
                        if (a->opts.arch < 0)
                                return usage_error("--architecture: unknown architecture \"%s\".", optarg);
                        break;
                case OPT_SEED:
                        r = check_option("seed", validate_seed, optarg);
                        a->opts.seed = optarg;
                        break;
                default:
                        if (!parse_account_option(c, optarg, &a->account, &a->settings, &a->allow_weak_password, &r))
                                return option_error(c, argv);
                }
                if (r != 0)
                        return r;
        }
        if (a->help) {
                help();
                return 0;
        }
        if (optind < argc)
                return usage_error("unexpected argument \"%s\".", argv[optind]);
        if (a->enc.encrypt == 0 && (a->enc.passphrase || a->enc.tpm2_pin || a->enc.tpm2_pcrs || a->enc.tpm2_signed_pcr11 ||
                                    a->escrow_dir || a->escrow_certificate))
                return usage_error("--no-encrypt contradicts the encryption options given with it.");
        r = check_escrow_options(a->escrow_dir, a->escrow_certificate);
        if (r != 0)
                return r;
        if (a->enc.tpm2 == TPM2_USE_OFF && (a->enc.tpm2_pin || a->enc.tpm2_pcrs || a->enc.tpm2_signed_pcr11))
                return usage_error("--tpm2=off contradicts --tpm2-pin, --tpm2-pcrs and --tpm2-signed-pcr11.");
        if (!a->account.user_name && (a->account.real_name || a->account.admin || a->account.auto_login || a->account.classic ||
                                      a->allow_weak_password))
                return usage_error("--real-name, --admin, --auto-login, --classic-user and --allow-weak-password need --user.");
        return 0;
}

/* The session's request from the command line's options. */
static void request_from_args(const PlanArgs *a, SessionRequest *r) {
        session_request_init(r);
        r->target = a->target;
        r->layout = a->opts;
        r->encrypt = a->enc;
        r->account = a->account;
        r->settings = a->settings;
        r->with_image = a->source != NULL;
        r->allow_unbootable = a->allow_unbootable;
}

/* A session with the image named (opened) and the plan for target made from a's options. */
static int plan_from_args(const PlanArgs *a, Session **ret) {
        _cleanup_(session_freep) Session *s = NULL;
        SessionRequest req;
        int r;

        r = session_new(&s);
        if (r >= 0 && a->image_certificate)
                r = session_set_image_certificate(s, a->image_certificate);
        if (r >= 0 && a->image_key)
                r = session_set_image_key(s, a->image_key);
        if (r >= 0 && a->source) {
                r = session_set_source(s, a->source);
                if (r >= 0)
                        r = session_open_source(s);
        }
        if (r < 0)
                return r;
        request_from_args(a, &req);
        r = session_plan(s, &req, NULL);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

static int verb_plan(int argc, char *argv[]) {
        _cleanup_(session_freep) Session *s = NULL;
        const Plan *p;
        PlanArgs a = {};
        int r;

        r = parse_plan_args(argc, argv, &a);
        if (r != 0 || a.help)
                return r;
        if (!a.target)
                return usage_error("--target DISK|FILE is required.");

        r = plan_from_args(&a, &s);
        if (r >= 0 && a.plan_file)
                r = session_save_plan(s, a.plan_file);
        if (r < 0)
                return fail(r);
        p = session_current_plan(s);
        if (arg_json) {
                json_object *j = plan_to_json(p);
                print_json(j);
                json_object_put(j);
        } else {
                plan_print_table(p, stdout);
                if (a.plan_file)
                        printf("\nSaved to %s. Run: imprint %s --plan-file %s\n", a.plan_file, p->source ? "install" : "apply",
                               a.plan_file);
                else
                        printf("\nNothing was written.\n");
        }
        return EXIT_OK;
}

/* ---- apply ------------------------------------------------------------------------------- */

/* The last line of machine-readable output: {"event":"result","success":…,"exitCode":…}. */
/* One line of imprint's JSON output (--json, unattended): j, then a flush, so that a machine reading
 * the stream sees each event as it happens. Takes j. */
static void print_json_line(json_object *j) {
        puts(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        fflush(stdout);
        json_object_put(j);
}

/* The message of the last result printed, for the per-machine report. */
static char *arg_result_message = NULL;

static void print_result_json(int code, const char *message) {
        json_object *j = json_object_new_object();

        free(arg_result_message);
        arg_result_message = message ? strdup(message) : NULL;

        /* systemctl status shows how it ended, until the unit stops. */
        if (code == EXIT_OK)
                (void) sd_notify(0, "STATUS=Finished successfully.");
        else
                (void) sd_notifyf(0, "STATUS=Failed (exit status %d): %s", code, message ?: "see the log");

        json_object_object_add(j, "event", json_object_new_string("result"));
        json_object_object_add(j, "success", json_object_new_boolean(code == EXIT_OK));
        json_object_object_add(j, "exitCode", json_object_new_int(code));
        if (message)
                json_object_object_add(j, "message", json_object_new_string(message));
        print_json_line(j);
}

static void progress_json(const ProgressEvent *ev) {
        static uint64_t last_update_usec = 0;
        json_object *j;

        /* One update a second is plenty for a machine reading the stream, and keeps a serial
         * console that shows it (the unattended unit) readable. */
        if (ev->type == PROGRESS_UPDATE && ev->done < ev->total) {
                struct timespec ts;
                uint64_t now;

                clock_gettime(CLOCK_MONOTONIC, &ts);
                now = (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
                if (now - last_update_usec < 1000000)
                        return;
                last_update_usec = now;
        }
        j = json_object_new_object();

        json_object_object_add(j, "event", json_object_new_string(progress_event_type_to_string(ev->type)));
        json_object_object_add(j, "step", json_object_new_int((int) ev->step));
        json_object_object_add(j, "steps", json_object_new_int((int) ev->n_steps));
        json_object_object_add(j, "id", json_object_new_string(ev->id));
        json_object_object_add(j, "description", json_object_new_string(ev->description));
        json_object_object_add(j, "done", json_object_new_int64((int64_t) ev->done));
        json_object_object_add(j, "total", json_object_new_int64((int64_t) ev->total));
        json_object_object_add(j, "rate", json_object_new_int64((int64_t) ev->rate));
        json_object_object_add(j, "etaSeconds", ev->eta_usec >= 0 ? json_object_new_double((double) ev->eta_usec / 1e6) : NULL);
        json_object_object_add(j, "elapsedSeconds", json_object_new_double((double) ev->elapsed_usec / 1e6));
        if (ev->type != PROGRESS_PLANNED)
                json_object_object_add(j, "cpuSeconds", json_object_new_double((double) ev->cpu_usec / 1e6));
        if (ev->message)
                json_object_object_add(j, "message", json_object_new_string(ev->message));
        print_json_line(j);
}


/* A progress event as the service's status line for systemctl status (sd_notify STATUS=; nothing
 * happens without $NOTIFY_SOCKET): "[5/9] copy-root: 1.2 GiB of 3.0 GiB, 85.0 MiB/s, 20 s left".
 * At most one update a second, as progress_json(); every step's start, end and failure. */
static void progress_status(const ProgressEvent *ev) {
        static uint64_t last_update_usec = 0;
        char rate[32] = "", eta[32] = "";

        switch (ev->type) {
        case PROGRESS_BEGIN:
                (void) sd_notifyf(0, "STATUS=[%u/%u] %s: %s", ev->step, ev->n_steps, ev->id, ev->description ?: "");
                return;
        case PROGRESS_END:
                (void) sd_notifyf(0, "STATUS=[%u/%u] %s: done", ev->step, ev->n_steps, ev->id);
                return;
        case PROGRESS_FAILED:
                (void) sd_notifyf(0, "STATUS=[%u/%u] %s failed: %s", ev->step, ev->n_steps, ev->id, ev->message ?: "");
                return;
        case PROGRESS_UPDATE:
                break;
        default:
                return;
        }
        if (ev->total <= 1)
                return;
        if (ev->done < ev->total) {
                struct timespec ts;
                uint64_t now;

                clock_gettime(CLOCK_MONOTONIC, &ts);
                now = (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
                if (now - last_update_usec < 1000000)
                        return;
                last_update_usec = now;
        }
        if (ev->rate > 0)
                snprintf(rate, sizeof(rate), ", %s/s", FORMAT_BYTES(ev->rate));
        if (ev->eta_usec >= 0)
                snprintf(eta, sizeof(eta), ", %" PRIi64 " s left", (ev->eta_usec + 999999) / 1000000);
        (void) sd_notifyf(0, "STATUS=[%u/%u] %s: %s of %s%s%s", ev->step, ev->n_steps, ev->id, FORMAT_BYTES(ev->done),
                          FORMAT_BYTES(ev->total), rate, eta);
}

static int confirm_on_terminal(const Plan *p) {
        char answer[256];

        if (arg_yes)
                return 1;
        if (!isatty(STDIN_FILENO))
                return error_setf(-ECANCELED, "Refusing to write to %s without confirmation: standard input is not a terminal. Pass --yes.",
                                  p->target);

        if (p->mode == PLAN_RESET) {
                reset_plan_print(p, stdout);
                printf("\nThis ERASES %s on %s for good. Type \"%s\" to continue, anything else cancels: ",
                       p->reset && p->reset->keep_home ? "the system (root)" : "the system and every user's files (root and home)",
                       p->target, p->target_name);
        } else {
                plan_print_table(p, stdout);
                printf("\nThis writes to %s%s. Type \"%s\" to continue, anything else cancels: ", p->target,
                       p->mode == PLAN_ERASE ? " and DESTROYS everything on it" : "", p->target_name);
        }
        fflush(stdout);
        if (!fgets(answer, sizeof(answer), stdin))
                return 0;
        answer[strcspn(answer, "\n")] = 0;
        return streq(answer, p->target_name);
}

static int recovery_key_on_terminal(const Plan *p, const Secret *key) {
        if (!arg_json && isatty(STDIN_FILENO) && isatty(STDOUT_FILENO))
                return recovery_key_dialogue(p, key, stdin, stdout);
        return error_setf(-ECANCELED,
                          "The recovery key of the encrypted disk would reach nobody: there is no terminal to show it on. Pass "
                          "--recovery-key-escrow=DIR to deliver it to a directory, or run on a terminal. Nothing was written to %s.",
                          p->target);
}

/* The install's events on the command line: progress (text or JSON), the confirmation, the
 * recovery key (shown on the terminal, or where it was delivered). */
/* What the erase steps of a reset said they did ("erase-root: crypto-erase (…)"), for the result. */
static char erase_report[2048];

static void note_erase_step(const ProgressEvent *ev) {
        size_t len = strlen(erase_report);

        if (ev->type != PROGRESS_END || strncmp(ev->id, "erase-", 6) != 0 || !ev->message)
                return;
        snprintf(erase_report + len, sizeof(erase_report) - len, "  %s: %s\n", ev->id + 6, ev->message);
}

/* imprint unattended with "report": the per-machine report being gathered (report.h). */
static Report *arg_report = NULL;

static int on_event(const SessionEvent *ev, void *userdata) {
        switch (ev->type) {
        case SESSION_EVENT_PROGRESS:
                if (arg_report)
                        report_progress(arg_report, ev->progress);
                note_erase_step(ev->progress);
                progress_status(ev->progress);
                if (arg_json)
                        progress_json(ev->progress);
                else
                        progress_print_text(ev->progress);
                return 0;
        case SESSION_EVENT_CONFIRM:
                return confirm_on_terminal(ev->plan);
        case SESSION_EVENT_RECOVERY_KEY:
                return recovery_key_on_terminal(ev->plan, ev->recovery_key);
        case SESSION_EVENT_RECOVERY_KEY_DELIVERED:
                if (arg_report)
                        report_escrow(arg_report, ev->path, ev->message);
                if (arg_json) {
                        json_object *j = json_object_new_object();
                        json_object_object_add(j, "event", json_object_new_string("recoveryKey"));
                        json_object_object_add(j, "deliveredTo", json_object_new_string(ev->path));
                        json_object_object_add(j, "format", json_object_new_string(ev->message ?: "plaintext")); /* escrow helper */
                        print_json_line(j);
                } else if (streq_ptr(ev->message, "cms"))
                        printf("The recovery key was written to %s, encrypted to the escrow certificate.\n", ev->path);
                else
                        printf("The recovery key was written to %s. Keep it safe, apart from this computer.\n", ev->path);
                return 0;
        default:
                return 0;
        }
}

/* The secrets the plan needs: each from its credential (imprint.passphrase, imprint.tpm2-pin,
 * imprint.user-password) when there is one, else asked on the terminal unless unattended. */
static int collect_secrets(Session *s, bool unattended, bool allow_weak) {
        int r;

        for (SessionSecret w = 0; w < _SESSION_SECRET_MAX; w++) {
                if (!session_needs_secret(s, w))
                        continue;
                r = session_secret_from_credential(s, w, w == SESSION_SECRET_USER_PASSWORD && allow_weak);
                if (r != -ENOENT) {
                        if (r < 0)
                                return r;
                        continue;
                }
                if (unattended || !isatty(STDIN_FILENO))
                        continue; /* session_check_secrets() names it */
                if (w == SESSION_SECRET_USER_PASSWORD) {
                        r = ask_user_password(s, allow_weak);
                        if (r < 0)
                                return r;
                } else {
                        Secret *v = NULL;

                        r = ask_secret(w == SESSION_SECRET_PASSPHRASE ? "Passphrase for the encrypted disk: " : "TPM2 PIN to type at every boot: ",
                                       w == SESSION_SECRET_PASSPHRASE, &v);
                        if (r >= 0)
                                r = session_set_secret(s, w, v, false);
                        if (r < 0)
                                return r;
                }
        }
        return session_check_secrets(s);
}

/* Installs (or applies) the session's plan with the command line's output; returns the exit
 * status (a JSON result line is printed with --json). */
static int execute_plan(Session *s, const SessionInstallOptions *o) {
        const Plan *p = session_current_plan(s);
        int r;

        r = session_install(s, o, on_event, NULL);
        if (r < 0) {
                int code = fail(r);
                if (r == -EINTR && session_interrupted(s))
                        code = interrupt_exit_status(session_interrupted(s));
                if (arg_json)
                        print_result_json(code, session_error_message(r));
                return code;
        }
        if (p->mode == PLAN_RESET) {
                const ResetTarget *t = NULL;
                const Disk *d = NULL;

                /* The audit record on the ESP says what was done, and by which method. */
                if (session_disk(s, p->target, &d) >= 0)
                        (void) session_reset_target(s, d, &t);
                if (arg_json)
                        print_result_json(EXIT_OK, t && t->last_reset ? t->last_reset : NULL);
                else {
                        printf("The reset of %s is complete.\n", p->target);
                        if (erase_report[0])
                                printf("Erased:\n%s", erase_report);
                        if (t && t->last_reset)
                                printf("Audit record: %s\n", t->last_reset);
                }
                return EXIT_OK;
        }
        if (arg_json)
                print_result_json(EXIT_OK, NULL);
        else if (p->source)
                printf("%s is installed on %s.\n", p->source->os_name ?: p->source->path, p->target);
        else
                printf("%s is partitioned as planned.\n", p->target);
        return EXIT_OK;
}

static int run_plan(const PlanArgs *a, bool need_image) {
        _cleanup_(session_freep) Session *s = NULL;
        int r;

        if (a->plan_file && (a->target || a->source || a->layout_given))
                return usage_error("give either --plan-file or --target (and --source) with layout options, not both.");
        if (!a->plan_file && (!a->target || (need_image && !a->source))) {
                bool both = need_image && !a->source && !a->target;

                /* Everything that is missing at once, not one per attempt. */
                return usage_error("%s%s%s %s required, or --plan-file FILE with a plan saved by imprint plan%s.",
                                   need_image && !a->source ? "--source IMAGE" : "", both ? " and " : "",
                                   a->target ? "" : "--target DISK|FILE", both ? "are" : "is", need_image ? " --source" : "");
        }

        if (a->plan_file) {
                r = session_new(&s);
                if (r >= 0 && a->image_certificate)
                        r = session_set_image_certificate(s, a->image_certificate);
                if (r >= 0)
                        r = session_load_plan(s, a->plan_file, NULL);
                if (r >= 0 && need_image && !session_current_plan(s)->source)
                        r = error_setf(-EINVAL, "The plan %s installs no image; make it with --source, or use imprint apply.", a->plan_file);
        } else
                r = plan_from_args(a, &s);
        if (r >= 0)
                r = collect_secrets(s, a->escrow_dir != NULL, a->allow_weak_password);
        if (r < 0)
                return fail(r);
        return execute_plan(s, &(SessionInstallOptions) { .no_variables = a->no_variables, .escrow_dir = a->escrow_dir,
                                                          .escrow_certificate = a->escrow_certificate });
}

static int verb_apply(int argc, char *argv[]) {
        PlanArgs a = {};
        int r = parse_plan_args(argc, argv, &a);
        if (r != 0 || a.help)
                return r;
        if (a.source)
                return usage_error("apply partitions only; to install an image use: imprint install --source %s …", a.source);
        return run_plan(&a, false);
}

static int verb_install(int argc, char *argv[]) {
        PlanArgs a = {};
        int r = parse_plan_args(argc, argv, &a);
        if (r != 0 || a.help)
                return r;
        return run_plan(&a, true);
}

/* ---- reset ------------------------------------------------------------------------------- */

/* imprint reset [DISK] …: the factory reset of a disk imprint installed (reset.h). */
static int verb_reset(int argc, char *argv[]) {
        static const struct option options[] = {
                { "keep-home", no_argument, NULL, OPT_KEEP_HOME },
                { "secure-erase", no_argument, NULL, OPT_SECURE_ERASE },
                { "tpm-clear", no_argument, NULL, OPT_TPM_CLEAR },
                { "source", required_argument, NULL, OPT_SOURCE },
                { "image-certificate", required_argument, NULL, OPT_IMAGE_CERTIFICATE },
                { "entry-point", required_argument, NULL, OPT_ENTRY_POINT },
                { "dry-run", no_argument, NULL, OPT_DRY_RUN },
                { "recovery-key-escrow", required_argument, NULL, OPT_RECOVERY_KEY_ESCROW },
                { "recovery-key-escrow-certificate", required_argument, NULL, OPT_RECOVERY_KEY_ESCROW_CERTIFICATE },
                { "no-variables", no_argument, NULL, OPT_NO_VARIABLES },
                { "tcti", required_argument, NULL, OPT_TCTI },
                { "user", required_argument, NULL, OPT_USER },
                { "real-name", required_argument, NULL, OPT_REAL_NAME },
                { "user-storage", required_argument, NULL, OPT_USER_STORAGE },
                { "admin", no_argument, NULL, OPT_ADMIN },
                { "auto-login", no_argument, NULL, OPT_AUTO_LOGIN },
                { "classic-user", no_argument, NULL, OPT_CLASSIC_USER },
                { "allow-weak-password", no_argument, NULL, OPT_ALLOW_WEAK_PASSWORD },
                { "hostname", required_argument, NULL, OPT_HOSTNAME },
                { "timezone", required_argument, NULL, OPT_TIMEZONE },
                { "locale", required_argument, NULL, OPT_LOCALE },
                { "keymap", required_argument, NULL, OPT_KEYMAP },
                { "json", no_argument, NULL, OPT_JSON },
                { "yes", no_argument, NULL, 'y' },
                { "verbose", no_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        _cleanup_(session_freep) Session *s = NULL;
        SessionResetRequest req;
        const char *source = NULL, *certificate = NULL, *escrow_dir = NULL, *escrow_certificate = NULL;
        bool dry_run = false, no_variables = false, allow_weak = false;
        const Plan *p = NULL;
        int c, r = 0;

        session_reset_request_init(&req);
        /* Started by the recovery entry (imprint.recovery=1), else from the live medium. */
        req.entry_point = reset_entry_point_here();
        while ((c = getopt_long(argc, argv, ":hyv", options, NULL)) >= 0) {
                switch (c) {
                case OPT_KEEP_HOME:
                        req.keep_home = true;
                        break;
                case OPT_SECURE_ERASE:
                        req.secure_erase = true;
                        break;
                case OPT_TPM_CLEAR:
                        req.tpm_clear = true;
                        break;
                case OPT_SOURCE:
                        source = optarg;
                        break;
                case OPT_IMAGE_CERTIFICATE:
                        certificate = optarg;
                        break;
                case OPT_ENTRY_POINT:
                        req.entry_point = reset_entry_point_from_string(optarg);
                        /* "unattended" is what a configuration says (imprint unattended), not an option. */
                        if (req.entry_point < 0 || req.entry_point == RESET_UNATTENDED)
                                return usage_error("--entry-point: \"%s\" is not one of boot-menu, live-medium.", optarg);
                        break;
                case OPT_DRY_RUN:
                        dry_run = true;
                        break;
                case OPT_RECOVERY_KEY_ESCROW:
                        escrow_dir = optarg;
                        break;
                case OPT_RECOVERY_KEY_ESCROW_CERTIFICATE:
                        r = check_escrow_certificate(optarg);
                        escrow_certificate = optarg;
                        break;
                case OPT_NO_VARIABLES:
                        no_variables = true;
                        break;
                case OPT_TCTI:
                        r = check_option("tcti", validate_tpm2_tcti, optarg);
                        req.account.tpm2_tcti = optarg;
                        break;
                case OPT_JSON:
                        arg_json = true;
                        break;
                case 'y':
                        arg_yes = true;
                        break;
                case 'v':
                        arg_verbose++;
                        set_verbosity();
                        break;
                case 'h':
                        help();
                        return EXIT_OK;
                default:
                        if (!parse_account_option(c, optarg, &req.account, &req.settings, &allow_weak, &r))
                                return option_error(c, argv);
                }
                if (r != 0)
                        return r;
        }
        if (argc - optind > 1)
                return usage_error("unexpected argument \"%s\": a reset takes one disk.", argv[optind + 1]);
        if (optind < argc)
                req.target = argv[optind];
        if (!req.account.user_name && (req.account.real_name || req.account.admin || req.account.auto_login ||
                                       req.account.classic || allow_weak))
                return usage_error("--real-name, --admin, --auto-login, --classic-user and --allow-weak-password need --user.");
        if (dry_run && arg_yes)
                return usage_error("--dry-run writes nothing, so there is nothing to confirm with --yes.");
        r = check_escrow_options(escrow_dir, escrow_certificate);
        if (r != 0)
                return r;

        r = session_new(&s);
        if (r >= 0 && certificate)
                r = session_set_image_certificate(s, certificate);
        if (r >= 0 && source)
                r = session_set_source(s, source);
        else if (r >= 0 && session_set_source(s, NULL) < 0)
                /* No image configured on this medium: fine for usr images, and session_plan_reset()
                 * says what is missing for a classic one. */
                error_clear();
        if (r >= 0)
                r = session_plan_reset(s, &req, &p);
        if (r < 0) {
                int code = fail(r);
                if (arg_json)
                        print_result_json(code, session_error_message(r));
                return code;
        }

        if (dry_run) {
                if (arg_json) {
                        json_object *j = reset_plan_to_json(p);
                        print_json(j);
                        json_object_put(j);
                } else {
                        reset_plan_print(p, stdout);
                        printf("\nNothing was written (--dry-run).\n");
                }
                return EXIT_OK;
        }

        /* Home kept: the TPM unlocks it if it can; else the current recovery key, from the
         * credential imprint.old-recovery-key or typed (never an option: it would be in argv). */
        if (p->reset->keep_home && p->encryption.enabled) {
                r = session_secret_from_credential(s, SESSION_SECRET_OLD_RECOVERY_KEY, false);
                if (r == -ENOENT) {
                        r = 0;
                        if (!arg_json && isatty(STDIN_FILENO))
                                r = ask_old_recovery_key(s);
                }
                if (r < 0)
                        return fail(r);
        }
        r = collect_secrets(s, escrow_dir != NULL, allow_weak);
        if (r < 0)
                return fail(r);
        return execute_plan(s, &(SessionInstallOptions) { .no_variables = no_variables, .escrow_dir = escrow_dir,
                                                          .escrow_certificate = escrow_certificate });
}

/* ---- tpm ---------------------------------------------------------------------------------- */

/* The pre-flight check the encryption step relies on: is there a TPM 2.0 that can hold a key
 * for this disk? When not, it says why, and what an install does instead. */
static int verb_tpm(int argc, char *argv[]) {
        static const struct option options[] = {
                { "json", no_argument, NULL, 'j' },
                { "tcti", required_argument, NULL, 't' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        _cleanup_(session_freep) Session *s = NULL;
        const Tpm2Status *st = NULL;
        const char *tcti = NULL;
        int c, r;

        while ((c = getopt_long(argc, argv, ":h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return EXIT_OK;
                case 'j':
                        arg_json = true;
                        break;
                case 't':
                        r = check_option("tcti", validate_tpm2_tcti, optarg);
                        if (r != 0)
                                return r;
                        tcti = optarg;
                        break;
                default:
                        return option_error(c, argv);
                }
        if (optind < argc)
                return usage_error("unexpected argument \"%s\".", argv[optind]);

        r = session_new(&s);
        if (r >= 0)
                r = session_tpm(s, tcti, &st);
        if (r < 0)
                return fail(r);
        if (arg_json) {
                json_object *j = json_object_new_object();
                json_object_object_add(j, "usable", json_object_new_boolean(r > 0));
                json_object_object_add(j, "present", json_object_new_boolean(st->present));
                json_object_object_add(j, "sha256Bank", json_object_new_boolean(st->sha256_bank));
                json_object_object_add(j, "lockout", json_object_new_boolean(st->lockout));
                json_object_object_add(j, "transientRoom", json_object_new_boolean(st->transient_room));
                json_object_object_add(j, "problem", st->problem ? json_object_new_string(st->problem) : NULL);
                print_json(j);
                json_object_put(j);
        } else if (r > 0)
                printf("TPM 2.0 usable: present, sha256 PCR bank active, not locked out, room for a key.\n"
                       "Encrypted installs seal their key to it (PCR 7) and add a recovery key.\n");
        else
                printf("No usable TPM: %s\n"
                       "Encrypted installs then unlock with a passphrase and the recovery key instead.\n",
                       st->problem ?: "unknown reason");
        return EXIT_OK;
}

/* ---- firmware ------------------------------------------------------------------------------ */

static void print_sigdb(const char *name, const FirmwareSigDb *db) {
        if (!db->present) {
                printf("%-4s  not enrolled\n", name);
                return;
        }
        printf("%-4s  %zu bytes, %zu certificate%s, %zu hash%s", name, db->size,
               db->n_certs, db->n_certs == 1 ? "" : "s", db->n_sha256, db->n_sha256 == 1 ? "" : "es");
        if (db->n_other > 0)
                printf(", %zu other entr%s", db->n_other, db->n_other == 1 ? "y" : "ies");
        putchar('\n');
        for (size_t i = 0; i < db->n_certs; i++)
                printf("      %s (owner %s)\n",
                       db->certs[i].common_name ?: db->certs[i].subject ?: "(certificate that does not parse)",
                       db->certs[i].owner);
}

/* The firmware's Secure Boot state as the installer sees it ($IMPRINT_EFIVARFS points it at a
 * recorded copy of another machine's efivarfs). Exit 0 whenever the state was read, whatever it
 * is; 1 when a variable is malformed. */
static int verb_firmware(int argc, char *argv[]) {
        static const struct option options[] = {
                { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        _cleanup_(firmware_state_done) FirmwareState st = {};
        _cleanup_(freep) char *sentence = NULL;
        int c, r;

        while ((c = getopt_long(argc, argv, ":h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return EXIT_OK;
                case 'j':
                        arg_json = true;
                        break;
                default:
                        return option_error(c, argv);
                }
        if (optind < argc)
                return usage_error("unexpected argument \"%s\".", argv[optind]);

        r = firmware_read(NULL, &st);
        if (r < 0) {
                fprintf(stderr, "imprint: %s\n", session_error_message(r));
                return 1;
        }
        sentence = firmware_state_describe(&st);
        if (!sentence)
                return fail(-ENOMEM);

        if (arg_json) {
                json_object *j = firmware_state_to_json(&st);
                if (!j)
                        return fail(-ENOMEM);
                print_json(j);
                json_object_put(j);
                return EXIT_OK;
        }

        printf("Mode  %s\n", firmware_mode_to_string(st.mode));
        if (st.mode != FIRMWARE_NOT_UEFI) {
                printf("      SecureBoot %d, SetupMode %d, AuditMode %d, DeployedMode %d\n",
                       st.secure_boot, st.setup_mode, st.audit_mode, st.deployed_mode);
                print_sigdb("PK", &st.pk);
                print_sigdb("KEK", &st.kek);
                print_sigdb("db", &st.db);
                print_sigdb("dbx", &st.dbx);
        }
        printf("\n%s\n", sentence);
        return EXIT_OK;
}

/* ---- unattended ------------------------------------------------------------------------- */

/* The reset half of imprint unattended: a configuration with a "reset" object (config.h). The
 * configuration is the confirmation; the new recovery key goes to its escrow directory. */
static int unattended_reset(Session *s, InstallConfig *c, ResetEntryPoint entry_point) {
        SessionResetRequest req;
        const Plan *p = NULL;
        int r = 0;

        session_reset_request_init(&req);
        req.target = c->reset_target;
        req.entry_point = entry_point;
        req.keep_home = c->reset_keep_home;
        req.secure_erase = c->reset_secure_erase;
        req.tpm_clear = c->reset_tpm_clear;
        req.account = c->account;
        req.settings = c->settings;
        if (c->image_certificate)
                r = session_set_image_certificate(s, c->image_certificate);
        if (r >= 0 && c->source)
                r = session_set_source(s, c->source);
        if (r >= 0)
                r = session_plan_reset(s, &req, &p);
        if (r >= 0 && p->encryption.enabled && !c->escrow_dir)
                r = error_setf(-EINVAL,
                               "%s: the reset encrypts %s with a new recovery key, but no \"recoveryKeyEscrow\" says where it goes "
                               "(such as {\"directory\": \"/mnt/escrow\", \"certificate\": \"/etc/imprint/oem.pem\"}); an unattended "
                               "reset never makes a key nobody has. Nothing was written.",
                               c->origin, p->target);
        if (r >= 0 && p->reset->keep_home && p->encryption.enabled) {
                /* Home kept: the TPM unlocks it, or the current recovery key from its credential. */
                r = session_secret_from_credential(s, SESSION_SECRET_OLD_RECOVERY_KEY, false);
                if (r == -ENOENT)
                        r = 0;
        }
        if (r >= 0)
                r = collect_secrets(s, true, c->allow_weak_password);
        if (r >= 0)
                r = machine_countdown(c, p->target);
        if (r < 0) {
                int code = fail(r);
                print_result_json(code, session_error_message(r));
                return code;
        }
        return execute_plan(s, &(SessionInstallOptions) { .no_variables = c->no_variables, .escrow_dir = c->escrow_dir,
                                                          .escrow_certificate = c->escrow_certificate });
}

/* Writes the per-machine report (when the configuration asked for one) with the install's result:
 * the plan when there was one, the exit status, and the sentence of a failure. */
static void unattended_report_finish(Session *s, int code) {
        int r;

        if (!arg_report)
                return;
        (void) sd_notify(0, "STATUS=Writing the report.");
        r = report_finish(arg_report, session_current_plan(s), code, arg_result_message);
        if (r < 0)
                log_warning("The report could not be delivered everywhere: %s", session_error_message(r));
        arg_report = report_free(arg_report);
        /* The result stays the service's status, with where the report went or did not. */
        if (code == EXIT_OK)
                (void) sd_notifyf(0, "STATUS=Finished successfully%s", r < 0 ? "; the report could not be delivered everywhere." : ".");
        else
                (void) sd_notifyf(0, "STATUS=Failed (exit status %d): %s%s", code, arg_result_message ?: "see the log",
                                  r < 0 ? " The report could not be delivered everywhere." : "");
}

static int verb_unattended(int argc, char *argv[]) {
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' },
                { "entry-point", required_argument, NULL, 'e' },
                { "verbose", no_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        _cleanup_(install_config_done) InstallConfig c = {};
        _cleanup_(session_freep) Session *s = NULL;
        const char *config = NULL;
        ResetEntryPoint entry_point = RESET_UNATTENDED;
        bool entry_point_given = false;
        const Plan *p = NULL;
        int opt, r, code;

        while ((opt = getopt_long(argc, argv, ":hv", options, NULL)) >= 0)
                switch (opt) {
                case 'h':
                        help();
                        return EXIT_OK;
                case 'c':
                        config = optarg;
                        break;
                case 'e':
                        entry_point = reset_entry_point_from_string(optarg);
                        if (entry_point < 0)
                                return usage_error("--entry-point: \"%s\" is not one of boot-menu, live-medium, unattended.", optarg);
                        entry_point_given = true;
                        break;
                case 'v':
                        arg_verbose++;
                        set_verbosity();
                        break;
                default:
                        return option_error(opt, argv);
                }
        if (optind < argc)
                return usage_error("unexpected argument \"%s\".", argv[optind]);

        /* Unattended means: the configuration is the confirmation, and progress is for machines. */
        arg_json = true;
        arg_yes = true;

        install_config_init(&c);
        r = session_new(&s);
        if (r >= 0)
                r = session_find_config(s, config, &c);
        if (r >= 0 && entry_point_given && !c.reset)
                r = error_setf(-EINVAL, "%s: --entry-point is for a reset, and the configuration has no \"reset\" object.", c.origin);
        /* A recorded configuration lists the credentials that carry its secrets: all of them must be
         * here before anything else is looked at. */
        if (r >= 0)
                r = install_config_check_credentials(&c);
        /* The report is gathered from here on; it is written at the end, refusals included. */
        if (r >= 0)
                r = report_new(&c, &arg_report);
        if (r >= 0) {
                json_object *j = json_object_new_object();
                json_object_object_add(j, "event", json_object_new_string("config"));
                json_object_object_add(j, "origin", json_object_new_string(c.origin));
                json_object_object_add(j, "source", c.source ? json_object_new_string(c.source) : NULL);
                if (c.reset) {
                        json_object_object_add(j, "reset", json_object_new_boolean(true));
                        json_object_object_add(j, "entryPoint", json_object_new_string(reset_entry_point_to_string(entry_point)));
                        json_object_object_add(j, "target", c.reset_target ? json_object_new_string(c.reset_target) : NULL);
                } else
                        json_object_object_add(j, "target", c.target ? json_object_new_string(c.target) : NULL);
                print_json_line(j);
        }
        /* Which machine: a line must not image a model it was not set up for. */
        if (r >= 0) {
                DmiInfo dmi = {};

                r = dmi_read(&dmi);
                if (r >= 0)
                        r = machine_check_allowed(&c, &dmi);
                if (r < 0 && arg_report)
                        report_refusal(arg_report, "machine", session_error_message(r));
                dmi_done(&dmi);
        }
        /* Which disk. */
        if (r >= 0) {
                r = session_resolve_config_target(s, &c);
                if (r < 0 && arg_report)
                        report_refusal(arg_report, "target", session_error_message(r));
                /* The disk the rules (or "auto") chose, before anything is planned. */
                if (r >= 0 && !c.reset && c.target) {
                        json_object *j = json_object_new_object();
                        json_object_object_add(j, "event", json_object_new_string("target"));
                        json_object_object_add(j, "target", json_object_new_string(c.target));
                        print_json_line(j);
                }
        }
        if (r >= 0 && c.reset) {
                AfterAction after;

                code = unattended_reset(s, &c, entry_point);
                unattended_report_finish(s, code);
                after = code == EXIT_OK ? c.after_reset : c.on_failure;
                if (after != AFTER_NONE) {
                        r = session_power(after == AFTER_REBOOT);
                        if (r < 0)
                                log_warning("%s", session_error_message(r));
                }
                return code;
        }
        if (r >= 0 && c.image_certificate)
                r = session_set_image_certificate(s, c.image_certificate);
        if (r >= 0 && c.image_key)
                r = session_set_image_key(s, c.image_key);
        if (r >= 0)
                r = session_set_source(s, c.source);
        if (r >= 0)
                r = session_open_source(s);
        if (r >= 0) {
                SessionRequest req;

                session_request_init(&req);
                req.target = c.target;
                req.layout = c.plan;
                req.encrypt = c.enc;
                req.account = c.account;
                req.settings = c.settings;
                req.with_image = true;
                req.allow_unbootable = c.allow_unbootable;
                r = session_plan(s, &req, &p);
        }
        if (r >= 0 && p->encryption.enabled && !c.escrow_dir)
                r = error_setf(-EINVAL,
                               "%s: the install encrypts %s, but no \"recoveryKeyEscrow\" says where its recovery key goes (such as "
                               "{\"directory\": \"/mnt/escrow\", \"certificate\": \"/etc/imprint/oem.pem\"}); an unattended install "
                               "never makes a key nobody has. Nothing was written.",
                               c.origin, p->target);
        if (r >= 0)
                r = collect_secrets(s, true, c.allow_weak_password);
        /* The last moment to stop a line before anything is written. */
        if (r >= 0)
                r = machine_countdown(&c, p->target);
        if (r < 0) {
                code = fail(r);
                print_result_json(code, session_error_message(r));
        } else
                code = execute_plan(s, &(SessionInstallOptions) { .no_variables = c.no_variables, .escrow_dir = c.escrow_dir,
                                                                  .escrow_certificate = c.escrow_certificate });
        unattended_report_finish(s, code);

        {
                AfterAction after = code == EXIT_OK ? c.after_install : c.on_failure;

                if (after != AFTER_NONE) {
                        r = session_power(after == AFTER_REBOOT);
                        if (r < 0)
                                log_warning("%s", session_error_message(r));
                }
        }
        return code;
}

/* --record FILE (imprint --plain, --tui): checked before the dialogue, so that a long install does
 * not end unrecorded for a typo; a reset is not recorded. */
static int check_record_option(const char *record, bool reset) {
        int r;

        if (!record)
                return 0;
        if (reset)
                return usage_error("--record records an install; a reset is not recorded.");
        r = config_record_check_path(record);
        if (r < 0)
                return usage_error("--record: %s", session_error_message(r));
        return 0;
}

static int verb_plain(int argc, char *argv[]) {
        static const struct option options[] = {
                { "reset", no_argument, NULL, 'r' },
                { "source", required_argument, NULL, 's' },
                { "lang", required_argument, NULL, 'L' },
                { "record", required_argument, NULL, 'R' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *source = NULL, *language = NULL, *record = NULL;
        bool reset = false;
        int c, r;

        while ((c = getopt_long(argc, argv, ":h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return EXIT_OK;
                case 'r':
                        reset = true;
                        break;
                case 's':
                        source = optarg;
                        break;
                case 'L':
                        if (i18n_language_find(optarg) < 0)
                                return usage_error("--lang=%s: the dialogue speaks en, de and fr.", optarg);
                        language = optarg;
                        break;
                case 'R':
                        record = optarg;
                        break;
                default:
                        return option_error(c, argv);
                }
        if (optind < argc)
                return usage_error("unexpected argument \"%s\".", argv[optind]);
        r = check_record_option(record, reset);
        if (r != 0)
                return r;
        return plain_run_record(source, language, reset, record);
}

/* imprint --tui [--source IMAGE] [--seed S] [--log FILE] [--lang L] [--mono]
 *              [--allow-weak-password] [DISK|FILE…]: the full-screen installer; named disks or
 * image files are the only targets offered (tests, demos). */
static int verb_tui(int argc, char *argv[]) {
        static const struct option options[] = {
                { "reset", no_argument, NULL, 'r' },
                { "source", required_argument, NULL, 's' },
                { "seed", required_argument, NULL, 'S' },
                { "log", required_argument, NULL, 'l' },
                { "lang", required_argument, NULL, 'L' },
                { "mono", no_argument, NULL, 'm' },
                { "allow-weak-password", no_argument, NULL, 'w' },
                { "record", required_argument, NULL, 'R' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        TuiOptions o = {};
        int c, r;

        while ((c = getopt_long(argc, argv, ":h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return EXIT_OK;
                case 's':
                        o.source = optarg;
                        break;
                case 'S':
                        r = check_option("seed", validate_seed, optarg);
                        if (r != 0)
                                return r;
                        o.seed = optarg;
                        break;
                case 'l':
                        o.log_path = optarg;
                        break;
                case 'L':
                        o.language = optarg;
                        break;
                case 'm':
                        o.mono = true;
                        break;
                case 'r':
                        o.reset = true;
                        break;
                case 'w':
                        o.allow_weak_password = true;
                        break;
                case 'R':
                        o.record_path = optarg;
                        break;
                default:
                        return option_error(c, argv);
                }
        if (optind < argc) {
                o.targets = argv + optind;
                o.n_targets = (size_t) (argc - optind);
        }
        r = check_record_option(o.record_path, o.reset);
        if (r != 0)
                return r;
        if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO))
                return usage_error("the full-screen installer needs a terminal; use imprint --plain for a line-by-line dialogue.");
        return tui_run(&o);
}

/* imprint --console: what the live medium's imprint@TTY.service runs. The full-screen installer
 * where a screen is known to show it — a virtual console, a pseudo terminal (a terminal emulator,
 * ssh) — and the line-by-line dialogue on serial ports and other lines, which may end in anything
 * from a log to a braille display. imprint.frontend.TTY=tui|plain (e.g. imprint.frontend.ttyS0=tui)
 * or imprint.frontend=tui|plain on the kernel command line overrides that choice. */
static int verb_console(int argc, char *argv[]) {
        _cleanup_(freep) char *key = NULL, *value = NULL;
        const char *tty, *origin = NULL;
        TerminalKind kind;
        bool tui, reset = false;
        int r;

        /* --reset: the recovery entry's units, straight to "Reset an installed system". */
        if (argc > 1 && streq(argv[1], "--reset"))
                reset = true;
        if (argc > 1 + reset)
                return usage_error("--console takes no arguments but --reset.");
        if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO))
                return usage_error("--console needs a terminal on standard input and output.");

        kind = terminal_kind(STDIN_FILENO);
        tui = kind != TERMINAL_LINE;
        tty = ttyname(STDIN_FILENO);
        if (tty && strncmp(tty, "/dev/", 5) == 0)
                tty += 5;
        r = 0;
        if (tty && !strchr(tty, '/')) {
                if (asprintf(&key, "imprint.frontend.%s", tty) < 0)
                        return fail(-ENOMEM);
                r = proc_cmdline_get_key(key, &value);
        }
        if (r <= 0) {
                free(key);
                key = strdup("imprint.frontend");
                if (!key)
                        return fail(-ENOMEM);
                r = proc_cmdline_get_key(key, &value);
        }
        if (r > 0) {
                if (streq(value, "tui") || streq(value, "plain")) {
                        tui = streq(value, "tui");
                        origin = key;
                } else
                        log_warning("Ignoring %s=%s on the kernel command line: it must be tui or plain.", key, value);
        }
        log_info("%s: %s (%s)", tty ?: "this terminal", tui ? "the full-screen installer" : "the line-by-line dialogue",
                 origin ?: (kind == TERMINAL_VIRTUAL_CONSOLE ? "a virtual console" : kind == TERMINAL_PSEUDO ? "a pseudo terminal" : "a serial or other line"));
        if (!tui)
                return plain_run(NULL, NULL, reset);
        if (kind == TERMINAL_LINE) {
                r = terminal_fix_size(STDIN_FILENO, 500);
                if (r < 0)
                        log_warning("Cannot set the size of %s: %s", tty ?: "the terminal", strerror(-r));
        }
        return tui_run(&(TuiOptions) { .shell_after = true, .reset = reset });
}

/* imprint --varlink [--listen=PATH]: the io.imprint.Installer service (varlink-installer.c). */
static int verb_varlink(int argc, char *argv[]) {
        static const struct option options[] = {
                { "listen", required_argument, NULL, 'l' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *listen_path = NULL;
        int c, r;

        optind = 1;
        while ((c = getopt_long(argc, argv, ":h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return EXIT_OK;
                case 'l':
                        listen_path = optarg;
                        break;
                default:
                        return option_error(c, argv);
                }
        if (optind < argc)
                return usage_error("unexpected argument \"%s\".", argv[optind]);
        /* What the service logs goes to the journal: steps and results, never a secret. */
        if (log_get_max_level() < LOG_INFO)
                log_set_max_level(LOG_INFO);
        r = varlink_installer_run(listen_path);
        return r < 0 ? fail(r) : EXIT_OK;
}

/* ---- main -------------------------------------------------------------------------------- */

int main(int argc, char *argv[]) {
        static const struct {
                const char *name;
                int (*fn)(int argc, char *argv[]);
        } verbs[] = {
                { "disks", verb_disks },
                { "plan", verb_plan },
                { "apply", verb_apply },
                { "install", verb_install },
                { "reset", verb_reset },
                { "unattended", verb_unattended },
                { "tpm", verb_tpm },
                { "firmware", verb_firmware },
        };
        int i;

        setlocale(LC_ALL, "");
        opterr = 0; /* option_error() says it, naming imprint and the command */

        /* Global options come before the verb. */
        for (i = 1; i < argc && argv[i][0] == '-'; i++) {
                if (streq(argv[i], "-h") || streq(argv[i], "--help")) {
                        help();
                        return EXIT_OK;
                }
                if (streq(argv[i], "--version")) {
                        puts("imprint " IMPRINT_VERSION);
                        return EXIT_OK;
                }
                if (streq(argv[i], "--plain")) {
                        set_verbosity();
                        optind = 1;
                        arg_verb = "--plain";
                        return verb_plain(argc - i, argv + i);
                }
                if (streq(argv[i], "--tui")) {
                        optind = 1;
                        arg_verb = "--tui";
                        return verb_tui(argc - i, argv + i);
                }
                if (streq(argv[i], "--varlink")) {
                        set_verbosity();
                        arg_verb = "--varlink";
                        return verb_varlink(argc - i, argv + i);
                }
                if (streq(argv[i], "--console")) {
                        set_verbosity();
                        return verb_console(argc - i, argv + i);
                }
                if (streq(argv[i], "-v") || streq(argv[i], "--verbose"))
                        arg_verbose++;
                else if (streq(argv[i], "-vv"))
                        arg_verbose += 2;
                else
                        return usage_error("unknown option \"%s\".", argv[i]);
        }
        set_verbosity();

        if (i >= argc) {
                /* No command on a terminal: the full-screen installer. */
                if (isatty(STDIN_FILENO) && isatty(STDOUT_FILENO)) {
                        if (argc == 1)
                                return tui_run(&(TuiOptions) {});
                        help();
                        return EXIT_USAGE;
                }
                /* A script, a pipe, a service without a TTY: not 150 lines of help, but why not
                 * and what works here. */
                return usage_error("the full-screen installer needs a terminal, and standard input or output is not one.\n"
                                   "Without a terminal, use a command: imprint disks, imprint plan, imprint install, "
                                   "imprint unattended,\nor imprint --plain for a line-by-line dialogue.");
        }
        if (streq(argv[i], "help")) {
                help();
                return EXIT_OK;
        }
        for (size_t k = 0; k < ELEMENTSOF(verbs); k++)
                if (streq(argv[i], verbs[k].name)) {
                        optind = 1;
                        arg_verb = verbs[k].name;
                        return verbs[k].fn(argc - i, argv + i);
                }
        return usage_error("unknown command \"%s\".", argv[i]);
}
