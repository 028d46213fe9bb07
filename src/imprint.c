/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The command line: subcommands, options, output, and exit codes (decided in one place,
 * exit_code_from_errno(), and documented in imprint(1)). */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "account.h"
#include "cli.h"
#include "quality.h"
#include "config.h"
#include "disk.h"
#include "error.h"
#include "executor.h"
#include "i18n-frontend.h"
#include "image.h"
#include "interrupt.h"
#include "log.h"
#include "run.h"
#include "tpm2.h"
#include "plan.h"
#include "proc-cmdline.h"
#include "size.h"
#include "terminal.h"
#include "validate.h"

enum {
        EXIT_OK = 0,
        EXIT_FAILED = 1,    /* the operation failed (I/O error, a tool failed, …) */
        EXIT_USAGE = 2,     /* bad command line or bad input (options, plan file, names) */
        EXIT_REFUSED = 3,   /* the target may not be written: in use, mounted, system disk, read-only, conflicting */
        EXIT_TOO_SMALL = 4, /* the layout does not fit on the target */
        EXIT_CHANGED = 5,   /* the target changed since the plan was made */
        EXIT_CANCELED = 6,  /* not confirmed; nothing was written */
        EXIT_BAD_IMAGE = 7, /* the OS image is unusable: truncated, damaged, checksum mismatch, not a DDI */
};

int exit_code_from_errno(int r) {
        switch (-r) {
        case 0:
                return EXIT_OK;
        case EINVAL:
        case ENOENT:
        case ENOTBLK:
        case EOPNOTSUPP:
        case E2BIG:
                return EXIT_USAGE;
        case EBUSY:
        case EROFS:
        case EEXIST:
        case EPERM:
        case EACCES:
                return EXIT_REFUSED;
        case ENOSPC:
                return EXIT_TOO_SMALL;
        case ESTALE:
                return EXIT_CHANGED;
        case ECANCELED:
                return EXIT_CANCELED;
        case EBADMSG:
                return EXIT_BAD_IMAGE;
        default:
                return EXIT_FAILED;
        }
}

bool arg_json = false;
bool arg_yes = false;
static int arg_verbose = 0;

static void set_verbosity(void) {
        log_set_max_level(arg_verbose >= 2 ? LOG_DEBUG : arg_verbose == 1 ? LOG_INFO : LOG_WARNING);
}

int fail(int r) {
        const char *m = error_message();

        if (m)
                fprintf(stderr, "imprint: %s\n", m);
        else
                fprintf(stderr, "imprint: %s\n", strerror(-r));
        return exit_code_from_errno(r);
}

/* The command being run ("install"), for the hint after a usage error. */
static const char *arg_verb = NULL;

int usage_error(const char *fmt, ...) {
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
               "  imprint unattended [--config FILE]\n"
               "  imprint tpm [--json] [--tcti TCTI]\n"
               "  imprint --plain [--source IMAGE] [--lang L]\n"
               "  imprint [--tui [--source IMAGE] [--seed S] [--log FILE] [--lang L] [--mono] [--allow-weak-password] [DISK|FILE…]]\n"
               "  imprint --console\n\n"
               "Commands:\n"
               "  disks    List the disks, what is on them, and whether they can be a target\n"
               "  plan     Show (and optionally save) the partition layout for a target; writes nothing\n"
               "  apply    Write the partition table and filesystems of a plan to its target\n"
               "  install  Install an OS image (a Discoverable Disk Image with UKIs): partition, copy,\n"
               "           verify, and make the target boot with systemd-boot\n"
               "  unattended  Install as a JSON configuration says (--config, the credential\n"
               "           imprint.config, or imprint.config=PATH on the kernel command line),\n"
               "           printing JSON progress; for OEM lines and test rigs\n"
               "  tpm      Check whether this machine's TPM 2.0 can hold a disk key, and say why not\n"
               "  --plain  A line-by-line installer dialogue (serial consoles, screen readers); --lang=en|de|fr\n"
               "  --tui    The full-screen installer (also: imprint with no arguments on a terminal);\n"
               "           --log=FILE, --lang=en|de|fr, --mono; named DISKs or FILEs are the only targets\n"
               "  --console  --tui on a virtual console or pseudo terminal, --plain on a serial line,\n"
               "           unless imprint.frontend[.TTY]=tui|plain on the kernel command line says otherwise\n\n"
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
               "  --recovery-key-escrow=DIR  Write the recovery key to DIR instead of showing it\n\n"
               "Account and first-boot settings (install):\n"
               "  --user=NAME             Create this account (password: credential imprint.user-password,\n"
               "                          or asked on the terminal); systemd-homed where possible\n"
               "  --real-name=NAME --admin --auto-login\n"
               "  --user-storage=luks|directory|subvolume  Storage of a systemd-homed account (default luks)\n"
               "  --classic-user          An /etc/passwd user even where systemd-homed could be used\n"
               "  --allow-weak-password   Accept a password libpwquality refuses (tests, kiosks)\n"
               "  --hostname=NAME --timezone=ZONE --locale=LOCALE --keymap=MAP\n\n"
               "Other options:\n"
               "  --source=IMAGE|self     The OS image to install (plan, install); \"self\": the disk\n"
               "                          this system runs from (a live medium installing itself)\n"
               "  --no-variables          Do not add a firmware boot entry (EFI variable)\n"

               "  --plan-file=FILE        plan: save the plan there; apply/install: execute exactly that plan\n"
               "  --json                  Machine-readable output (apply: one JSON object per progress event)\n"
               "  -y --yes                Do not ask for confirmation before writing\n"
               "  -v --verbose            Log what is done (twice: debug)\n"
               "  -h --help  --version\n\n"
               "SIZE takes K, M, G, T suffixes (powers of 1024). See imprint(1) for exit codes.\n");
}

/* ---- disks ------------------------------------------------------------------------------ */

void print_disk(const Disk *d) {
        printf("%-14s %10s  %-7s %-28.28s %-20.20s %-5s %s\n", d->path, FORMAT_BYTES(d->size),
               transport_to_string(d->transport) ?: "-", d->model ?: (d->backing_file ?: "-"), d->serial ?: "-",
               d->pttype ?: "-", disk_is_usable(d) ? "yes" : "no");
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
        DiskList l = {};
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
        if (optind < argc) {
                /* Named disks or image files: describe just those. */
                for (int i = optind; i < argc; i++) {
                        Disk *d = NULL;
                        Disk **n;

                        r = disk_discover(argv[i], &o, &d);
                        if (r < 0) {
                                disk_list_done(&l);
                                return fail(r);
                        }
                        n = realloc(l.disks, (l.n_disks + 1) * sizeof(Disk *));
                        if (!n) {
                                disk_free(d);
                                disk_list_done(&l);
                                return fail(-ENOMEM);
                        }
                        l.disks = n;
                        l.disks[l.n_disks++] = d;
                }
        } else {
                r = disk_list_discover(&o, &l);
                if (r < 0)
                        return fail(r);
        }

        if (arg_json) {
                json_object *a = json_object_new_array();
                for (size_t i = 0; i < l.n_disks; i++)
                        json_object_array_add(a, disk_to_json(l.disks[i]));
                print_json(a);
                json_object_put(a);
        } else {
                printf("%-14s %10s  %-7s %-28s %-20s %-5s %s\n", "DISK", "SIZE", "BUS", "MODEL", "SERIAL", "TABLE", "USABLE");
                for (size_t i = 0; i < l.n_disks; i++)
                        print_disk(l.disks[i]);
        }
        disk_list_done(&l);
        return EXIT_OK;
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
        OPT_ENCRYPT,
        OPT_NO_ENCRYPT,
        OPT_TPM2,
        OPT_TPM2_PCRS,
        OPT_TPM2_SIGNED_PCR11,
        OPT_TPM2_PIN,
        OPT_PASSPHRASE,
        OPT_TCTI,
        OPT_RECOVERY_KEY_ESCROW,
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
        { "encrypt", no_argument, NULL, OPT_ENCRYPT },
        { "no-encrypt", no_argument, NULL, OPT_NO_ENCRYPT },
        { "tpm2", required_argument, NULL, OPT_TPM2 },
        { "tpm2-pcrs", required_argument, NULL, OPT_TPM2_PCRS },
        { "tpm2-signed-pcr11", no_argument, NULL, OPT_TPM2_SIGNED_PCR11 },
        { "tpm2-pin", no_argument, NULL, OPT_TPM2_PIN },
        { "passphrase", no_argument, NULL, OPT_PASSPHRASE },
        { "tcti", required_argument, NULL, OPT_TCTI },
        { "recovery-key-escrow", required_argument, NULL, OPT_RECOVERY_KEY_ESCROW },
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
        { "yes", no_argument, NULL, 'y' },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        {},
};

typedef struct PlanArgs {
        const char *target;
        const char *source;
        bool no_variables;
        const char *plan_file;
        bool layout_given;
        PlanOptions opts;
        EncryptRequest enc;
        const char *escrow_dir;
        AccountRequest account;
        bool allow_weak_password;
        PlanSettings settings;   /* strings point into argv */
        bool help;
} PlanArgs;

/* An option's value through the check every loader of that field uses (validate.h). */
static int check_option(const char *name, int (*validate)(const char *), const char *value) {
        if (validate(value) < 0)
                return usage_error("--%s: %s", name, error_message());
        return 0;
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
                case OPT_USER:
                        r = check_option("user", validate_user_name, optarg);
                        a->account.user_name = optarg;
                        break;
                case OPT_REAL_NAME:
                        r = check_option("real-name", validate_real_name, optarg);
                        a->account.real_name = optarg;
                        break;
                case OPT_USER_STORAGE:
                        a->account.storage = account_storage_from_string(optarg);
                        if (a->account.storage < 0)
                                return usage_error("--user-storage: \"%s\" is not one of luks, directory, subvolume.", optarg);
                        break;
                case OPT_ADMIN:
                        a->account.admin = true;
                        break;
                case OPT_AUTO_LOGIN:
                        a->account.auto_login = true;
                        break;
                case OPT_CLASSIC_USER:
                        a->account.classic = true;
                        break;
                case OPT_ALLOW_WEAK_PASSWORD:
                        a->allow_weak_password = true;
                        break;
                case OPT_HOSTNAME:
                        r = check_option("hostname", validate_hostname, optarg);
                        a->settings.hostname = optarg;
                        break;
                case OPT_TIMEZONE:
                        r = check_option("timezone", validate_timezone, optarg);
                        a->settings.timezone = optarg;
                        break;
                case OPT_LOCALE:
                        r = check_option("locale", validate_locale, optarg);
                        a->settings.locale = optarg;
                        break;
                case OPT_KEYMAP:
                        r = check_option("keymap", validate_keymap, optarg);
                        a->settings.keymap = optarg;
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
                case OPT_NO_VARIABLES:
                        a->no_variables = true;
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
                                    a->escrow_dir))
                return usage_error("--no-encrypt contradicts the encryption options given with it.");
        if (a->enc.tpm2 == TPM2_USE_OFF && (a->enc.tpm2_pin || a->enc.tpm2_pcrs || a->enc.tpm2_signed_pcr11))
                return usage_error("--tpm2=off contradicts --tpm2-pin, --tpm2-pcrs and --tpm2-signed-pcr11.");
        if (!a->account.user_name && (a->account.real_name || a->account.admin || a->account.auto_login || a->account.classic ||
                                      a->allow_weak_password))
                return usage_error("--real-name, --admin, --auto-login, --classic-user and --allow-weak-password need --user.");
        return 0;
}

/* Opens the image and reads everything the plan and the boot step need from it. */
int open_image(const char *path, Image **ret) {
        _cleanup_(image_freep) Image *img = NULL;
        int r;

        r = image_open(path, &img);
        if (r < 0)
                return r;
        r = image_find_checksum(img);
        if (r < 0)
                return r;
        r = image_load_boot(img);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(img);
        return 0;
}

int build_plan(const char *target, const char *source, const PlanOptions *opts, const EncryptRequest *enc,
               const AccountRequest *account, const PlanSettings *settings, Image **img, Plan **ret) {
        _cleanup_(plan_source_freep) PlanSource *src = NULL;
        _cleanup_(plan_encryption_done) PlanEncryption e = {};
        _cleanup_(plan_account_freep) PlanAccount *acct = NULL;
        _cleanup_(disk_freep) Disk *d = NULL;
        _cleanup_(freep) char *self = NULL;
        PlanOptions o = *opts;
        int r;

        if (source) {
                if (streq(source, "self")) {
                        r = image_resolve_self(&self);
                        if (r < 0)
                                return r;
                }
                r = open_image(self ?: source, img);
                if (r < 0)
                        return r;
                r = image_to_plan_source(*img, &src);
                if (r < 0)
                        return r;
                o.source = src;
        }
        r = disk_discover(target, &(DiscoverOptions) { .probe_os = true }, &d);
        if (r == -ENOENT && access(target, F_OK) < 0 && errno == ENOENT) {
                if (strncmp(target, "/dev/", 5) == 0)
                        return error_setf(r, "%s does not exist; imprint disks lists the disks of this machine.", target);
                return error_setf(r, "%s does not exist. To install into an image file, make one first, for example a sparse "
                                     "16 GiB file: truncate -s 16G %s", target, target);
        }
        if (r < 0)
                return r;
        if (source && d->kind == DISK_IMAGE_FILE) {
                _cleanup_(freep) char *s = realpath(source, NULL), *t = realpath(target, NULL);
                if (s && t && streq(s, t))
                        return error_setf(-EINVAL, "The image and the target are the same file, %s.", s);
        }
        if (enc) {
                r = encryption_decide(enc, d->kind, *img, &e);
                if (r < 0)
                        return r;
                o.encryption = &e;
        }
        if (account && account->user_name) {
                AccountRequest req = *account;

                if (!source)
                        return error_setf(-EINVAL, "An account can only be created by an install of an image (--source).");
                if (!req.tpm2_tcti && enc)
                        req.tpm2_tcti = enc->tpm2_tcti;
                r = account_decide(&req, *img, d->kind, &acct);
                if (r < 0)
                        return r;
                o.account = acct;
        }
        if (settings) {
                r = settings_validate(settings);
                if (r < 0)
                        return r;
                o.settings = settings;
        }
        return plan_build(d, &o, ret);
}

static int verb_plan(int argc, char *argv[]) {
        _cleanup_(plan_freep) Plan *p = NULL;
        _cleanup_(image_freep) Image *img = NULL;
        PlanArgs a = {};
        int r;

        r = parse_plan_args(argc, argv, &a);
        if (r != 0 || a.help)
                return r;
        if (!a.target)
                return usage_error("--target DISK|FILE is required.");

        r = build_plan(a.target, a.source, &a.opts, &a.enc, &a.account, &a.settings, &img, &p);
        if (r < 0)
                return fail(r);
        if (a.plan_file) {
                r = plan_save(p, a.plan_file);
                if (r < 0)
                        return fail(r);
        }
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
static void print_result_json(int code, const char *message) {
        json_object *j = json_object_new_object();

        json_object_object_add(j, "event", json_object_new_string("result"));
        json_object_object_add(j, "success", json_object_new_boolean(code == EXIT_OK));
        json_object_object_add(j, "exitCode", json_object_new_int(code));
        if (message)
                json_object_object_add(j, "message", json_object_new_string(message));
        puts(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        fflush(stdout);
        json_object_put(j);
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
        if (ev->message)
                json_object_object_add(j, "message", json_object_new_string(ev->message));
        puts(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        fflush(stdout);
        json_object_put(j);
}

static void progress_text(const ProgressEvent *ev) {
        bool tty = isatty(STDOUT_FILENO);

        switch (ev->type) {
        case PROGRESS_BEGIN:
                printf("[%u/%u] %s …%s", ev->step, ev->n_steps, ev->description, tty ? "" : "\n");
                break;
        case PROGRESS_UPDATE:
                if (tty) {
                        char eta[32] = "";

                        if (ev->eta_usec >= 0)
                                snprintf(eta, sizeof(eta), ", %" PRIi64 ":%02" PRIi64 " left", ev->eta_usec / 60000000,
                                         ev->eta_usec / 1000000 % 60);
                        printf("\r\033[K[%u/%u] %s … %s of %s (%u%%), %s/s%s", ev->step, ev->n_steps, ev->description,
                               FORMAT_BYTES(ev->done), FORMAT_BYTES(ev->total),
                               ev->total ? (unsigned) (ev->done * 100 / ev->total) : 0, FORMAT_BYTES(ev->rate), eta);
                }
                break;
        case PROGRESS_END:
                if (tty)
                        printf("\r\033[K[%u/%u] %s … done (%.1f s)\n", ev->step, ev->n_steps, ev->description,
                               (double) ev->elapsed_usec / 1e6);
                else /* a log or a pipe: each line must say which step it is about on its own */
                        printf("[%u/%u] %s … done (%.1f s)\n", ev->step, ev->n_steps, ev->description,
                               (double) ev->elapsed_usec / 1e6);
                break;
        case PROGRESS_FAILED:
                printf("%s[%u/%u] %s … FAILED\n", tty ? "\r\033[K" : "", ev->step, ev->n_steps, ev->description);
                break;
        default:
                break;
        }
        fflush(stdout);
}

void on_progress(const ProgressEvent *ev, void *userdata) {
        if (arg_json)
                progress_json(ev);
        else
                progress_text(ev);
}

int on_confirm(const Plan *p, void *userdata) {
        char answer[256];

        if (arg_yes)
                return 1;
        if (!isatty(STDIN_FILENO))
                return error_setf(-ECANCELED, "Refusing to write to %s without confirmation: standard input is not a terminal. Pass --yes.",
                                  p->target);

        plan_print_table(p, stdout);
        printf("\nThis writes to %s%s. Type \"%s\" to continue, anything else cancels: ", p->target,
               p->mode == PLAN_ERASE ? " and DESTROYS everything on it" : "", p->target_name);
        fflush(stdout);
        if (!fgets(answer, sizeof(answer), stdin))
                return 0;
        answer[strcspn(answer, "\n")] = 0;
        return streq(answer, p->target_name);
}

static int run_plan(const PlanArgs *a, bool need_image) {
        _cleanup_(plan_freep) Plan *p = NULL;
        _cleanup_(image_freep) Image *img = NULL;
        _cleanup_(secret_freep) Secret *passphrase = NULL, *pin = NULL, *password = NULL;
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
                r = plan_load(a->plan_file, &p);
                if (r >= 0 && need_image && !p->source)
                        r = error_setf(-EINVAL, "The plan %s installs no image; make it with --source, or use imprint apply.", a->plan_file);
                if (r >= 0 && p->source)
                        r = open_image(p->source->path, &img);
        } else
                r = build_plan(a->target, a->source, &a->opts, &a->enc, &a->account, &a->settings, &img, &p);
        if (r < 0)
                return fail(r);
        r = collect_secrets(p, a->escrow_dir != NULL, &passphrase, &pin);
        if (r >= 0)
                r = collect_user_password(p, false, a->allow_weak_password, &password);
        if (r < 0)
                return fail(r);
        return execute_plan(p, img, &(InstallExtras) {
                .no_variables = a->no_variables,
                .escrow_dir = a->escrow_dir,
                .passphrase = passphrase,
                .tpm2_pin = pin,
                .user_password = password,
        });
}

/* Why secret_read_credential() refused a credential, for the sentence after "Cannot read …: ". */
static const char *credential_problem(int r) {
        switch (-r) {
        case EINVAL:
                return "it is empty, holds a NUL byte, or is not a regular file";
        case E2BIG:
                return "it is longer than 512 bytes";
        default:
                return strerror(-r);
        }
}

/* The account's password: the credential imprint.user-password, else asked on the terminal;
 * checked with libpwquality unless weak passwords are allowed (tests, kiosks). */
int collect_user_password(const Plan *p, bool unattended, bool allow_weak, Secret **ret) {
        int r;

        *ret = NULL;
        if (!p->account)
                return 0;
        r = secret_read_credential("imprint.user-password", 512, ret);
        if (r == -ENOENT && !unattended && isatty(STDIN_FILENO)) {
                char prompt[128];

                printf("Password for %s (the login of the installed system):\n", p->account->user_name);
                snprintf(prompt, sizeof(prompt), "Password for %s: ", p->account->user_name);
                for (;;) {
                        r = ask_secret(prompt, false, ret);
                        if (r < 0)
                                return r;
                        r = account_password_check(p->account, *ret);
                        if (r >= 0 || allow_weak) {
                                if (r >= 0)
                                        printf("Strength: %d of 100.\n", r);
                                return 0;
                        }
                        printf("Too weak: %s Choose another.\n", error_message());
                        *ret = secret_free(*ret);
                }
        }
        if (r == -ENOENT)
                return error_setf(-EINVAL, "The plan creates the account %s, but neither the credential imprint.user-password nor a terminal to ask on is there.",
                                  p->account->user_name);
        if (r < 0)
                return error_setf(r, "Cannot read the credential imprint.user-password: %s.", credential_problem(r));
        r = account_password_check(p->account, *ret);
        if (r < 0 && !(allow_weak && r == -EPERM)) {
                *ret = secret_free(*ret);
                /* A refused password is bad input (exit 2), not a target that may not be written
                 * (-EPERM's exit 3). */
                return error_prefixf(r == -EPERM ? -EINVAL : r, "The password for %s from the credential imprint.user-password is refused",
                                     p->account->user_name);
        }
        return 0;
}

static int on_recovery_key(const Plan *p, const Secret *key, void *userdata) {
        const InstallExtras *x = userdata;
        int r;

        if (x && x->escrow_dir) {
                _cleanup_(freep) char *path = NULL;

                r = encryption_escrow_recovery_key(p, key, x->escrow_dir, &path);
                if (r < 0)
                        return r;
                if (arg_json) {
                        json_object *j = json_object_new_object();
                        json_object_object_add(j, "event", json_object_new_string("recoveryKey"));
                        json_object_object_add(j, "deliveredTo", json_object_new_string(path));
                        puts(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
                        fflush(stdout);
                        json_object_put(j);
                } else
                        printf("The recovery key was written to %s. Keep it safe, apart from this computer.\n", path);
                return 1;
        }
        if (!arg_json && isatty(STDIN_FILENO) && isatty(STDOUT_FILENO))
                return recovery_key_dialogue(p, key, stdin, stdout);
        return error_setf(-ECANCELED,
                          "The recovery key of the encrypted disk would reach nobody: there is no terminal to show it on. Pass "
                          "--recovery-key-escrow=DIR to deliver it to a directory, or run on a terminal. Nothing was written to %s.",
                          p->target);
}

/* The passphrase and TPM PIN the plan needs: from the credentials imprint.passphrase and
 * imprint.tpm2-pin when present (unattended installs), else asked on the terminal. */
int collect_secrets(const Plan *p, bool unattended, Secret **ret_passphrase, Secret **ret_pin) {
        static const struct {
                const char *credential, *prompt, *what;
                bool quality;
        } table[] = {
                { "imprint.passphrase", "Passphrase for the encrypted disk: ", "passphrase", true },
                { "imprint.tpm2-pin", "TPM2 PIN to type at every boot: ", "TPM2 PIN", false },
        };
        Secret **rets[] = { ret_passphrase, ret_pin };
        bool wanted[] = { p->encryption.enabled && p->encryption.passphrase, p->encryption.enabled && p->encryption.tpm2_pin };
        int r;

        *ret_passphrase = *ret_pin = NULL;
        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                if (!wanted[i])
                        continue;
                r = secret_read_credential(table[i].credential, 512, rets[i]);
                if (r == -ENOENT && !unattended && isatty(STDIN_FILENO))
                        r = ask_secret(table[i].prompt, table[i].quality, rets[i]);
                else if (r >= 0 && table[i].quality) {
                        r = password_quality_check((const char *) (*rets[i])->data, NULL);
                        if (r < 0) /* bad input (exit 2), as a refused account password */
                                r = error_prefixf(r == -EPERM ? -EINVAL : r, "The %s from the credential %s is too weak", table[i].what,
                                                  table[i].credential);
                } else if (r == -ENOENT)
                        r = error_setf(-EINVAL, "The plan has a %s, but neither the credential %s nor a terminal to ask on is there.",
                                       table[i].what, table[i].credential);
                else if (r < 0)
                        r = error_setf(r, "Cannot read the credential %s: %s.", table[i].credential, credential_problem(r));
                if (r < 0) {
                        *ret_passphrase = secret_free(*ret_passphrase);
                        *ret_pin = secret_free(*ret_pin);
                        return r;
                }
        }
        return 0;
}

int execute_plan(const Plan *p, Image *img, const InstallExtras *x) {
        int r;

        (void) interrupt_install(); /* Ctrl-C, SIGTERM, SIGHUP: stop at a safe point, say where */
        r = executor_run(p, img,
                         &(ExecOptions) {
                                 .no_variables = x && x->no_variables,
                                 .passphrase = x ? x->passphrase : NULL,
                                 .tpm2_pin = x ? x->tpm2_pin : NULL,
                                 .user_password = x ? x->user_password : NULL,
                         },
                         &(ExecCallbacks) {
                                 .progress = on_progress,
                                 .confirm = on_confirm,
                                 .recovery_key = on_recovery_key,
                                 .userdata = (void *) x,
                         });
        if (r < 0) {
                int code = fail(r);
                if (r == -EINTR && interrupt_pending())
                        code = interrupt_exit_status(interrupt_pending());
                if (arg_json)
                        print_result_json(code, error_message() ?: strerror(-r));
                return code;
        }
        if (arg_json)
                print_result_json(EXIT_OK, NULL);
        else if (p->source)
                printf("%s is installed on %s.\n", p->source->os_name ?: p->source->path, p->target);
        else
                printf("%s is partitioned as planned.\n", p->target);
        return EXIT_OK;
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
        _cleanup_(tpm2_status_done) Tpm2Status st = {};
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

        r = tpm2_check(tcti, &st);
        if (r < 0)
                return fail(r);
        if (arg_json) {
                json_object *j = json_object_new_object();
                json_object_object_add(j, "usable", json_object_new_boolean(r > 0));
                json_object_object_add(j, "present", json_object_new_boolean(st.present));
                json_object_object_add(j, "sha256Bank", json_object_new_boolean(st.sha256_bank));
                json_object_object_add(j, "lockout", json_object_new_boolean(st.lockout));
                json_object_object_add(j, "transientRoom", json_object_new_boolean(st.transient_room));
                json_object_object_add(j, "problem", st.problem ? json_object_new_string(st.problem) : NULL);
                print_json(j);
                json_object_put(j);
        } else if (r > 0)
                printf("TPM 2.0 usable: present, sha256 PCR bank active, not locked out, room for a key.\n"
                       "Encrypted installs seal their key to it (PCR 7) and add a recovery key.\n");
        else
                printf("No usable TPM: %s\n"
                       "Encrypted installs then unlock with a passphrase and the recovery key instead.\n",
                       st.problem ?: "unknown reason");
        return EXIT_OK;
}

/* ---- unattended ------------------------------------------------------------------------- */

static int run_after_action(AfterAction a) {
        char *argv[] = { (char *) "systemctl", (char *) (a == AFTER_REBOOT ? "reboot" : "poweroff"), NULL };

        if (a == AFTER_NONE)
                return 0;
        /* Only a system run by systemd can be told to power off this way. */
        if (access("/run/systemd/system", F_OK) < 0) {
                log_warning("Not running under systemd: not powering off or rebooting.");
                return 0;
        }
        return run_command(argv, NULL);
}

static int verb_unattended(int argc, char *argv[]) {
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' },
                { "verbose", no_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        _cleanup_(install_config_done) InstallConfig c = {};
        _cleanup_(secret_freep) Secret *passphrase = NULL, *pin = NULL, *password = NULL;
        _cleanup_(plan_freep) Plan *p = NULL;
        _cleanup_(image_freep) Image *img = NULL;
        const char *config = NULL;
        int opt, r, code;

        while ((opt = getopt_long(argc, argv, ":hv", options, NULL)) >= 0)
                switch (opt) {
                case 'h':
                        help();
                        return EXIT_OK;
                case 'c':
                        config = optarg;
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
        r = install_config_find(&c, config);
        if (r == 0)
                r = error_setf(-EINVAL, "No install configuration: pass --config FILE, the credential imprint.config, "
                                        "or imprint.config=PATH on the kernel command line.");
        if (r >= 0 && !c.source)
                r = error_setf(-EINVAL, "%s: no \"source\" image is named.", c.origin);
        if (r >= 0) {
                json_object *j = json_object_new_object();
                json_object_object_add(j, "event", json_object_new_string("config"));
                json_object_object_add(j, "origin", json_object_new_string(c.origin));
                json_object_object_add(j, "source", json_object_new_string(c.source));
                json_object_object_add(j, "target", c.target ? json_object_new_string(c.target) : NULL);
                puts(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
                fflush(stdout);
                json_object_put(j);
                r = install_config_resolve_target(&c);
        }
        if (r >= 0)
                r = build_plan(c.target, c.source, &c.plan, &c.enc, c.account.user_name ? &c.account : NULL, &c.settings, &img, &p);
        if (r >= 0 && p->encryption.enabled && !c.escrow_dir)
                r = error_setf(-EINVAL,
                               "%s: the install encrypts %s, but no \"recoveryKeyEscrow\" directory says where its recovery key goes; "
                               "an unattended install never makes a key nobody has. Nothing was written.",
                               c.origin, p->target);
        if (r >= 0)
                r = collect_secrets(p, true, &passphrase, &pin);
        if (r >= 0)
                r = collect_user_password(p, true, c.allow_weak_password, &password);
        if (r < 0) {
                code = fail(r);
                print_result_json(code, error_message() ?: strerror(-r));
        } else
                code = execute_plan(p, img, &(InstallExtras) {
                        .no_variables = c.no_variables,
                        .escrow_dir = c.escrow_dir,
                        .passphrase = passphrase,
                        .tpm2_pin = pin,
                        .user_password = password,
                });

        r = run_after_action(code == EXIT_OK ? c.after_install : c.on_failure);
        if (r < 0)
                log_warning("%s", error_message() ?: "Cannot power off.");
        return code;
}

static int verb_plain(int argc, char *argv[]) {
        static const struct option options[] = {
                { "source", required_argument, NULL, 's' },
                { "lang", required_argument, NULL, 'L' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *source = NULL, *language = NULL;
        int c;

        while ((c = getopt_long(argc, argv, ":h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return EXIT_OK;
                case 's':
                        source = optarg;
                        break;
                case 'L':
                        if (i18n_language_find(optarg) < 0)
                                return usage_error("--lang=%s: the dialogue speaks en, de and fr.", optarg);
                        language = optarg;
                        break;
                default:
                        return option_error(c, argv);
                }
        if (optind < argc)
                return usage_error("unexpected argument \"%s\".", argv[optind]);
        return plain_run(source, language);
}

/* imprint --tui [--source IMAGE] [--seed S] [--log FILE] [--lang L] [--mono]
 *              [--allow-weak-password] [DISK|FILE…]: the full-screen installer; named disks or
 * image files are the only targets offered (tests, demos). */
static int verb_tui(int argc, char *argv[]) {
        static const struct option options[] = {
                { "source", required_argument, NULL, 's' },
                { "seed", required_argument, NULL, 'S' },
                { "log", required_argument, NULL, 'l' },
                { "lang", required_argument, NULL, 'L' },
                { "mono", no_argument, NULL, 'm' },
                { "allow-weak-password", no_argument, NULL, 'w' },
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
                case 'w':
                        o.allow_weak_password = true;
                        break;
                default:
                        return option_error(c, argv);
                }
        if (optind < argc) {
                o.targets = argv + optind;
                o.n_targets = (size_t) (argc - optind);
        }
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
        bool tui;
        int r;

        if (argc > 1)
                return usage_error("--console takes no arguments.");
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
                return plain_run(NULL, NULL);
        if (kind == TERMINAL_LINE) {
                r = terminal_fix_size(STDIN_FILENO, 500);
                if (r < 0)
                        log_warning("Cannot set the size of %s: %s", tty ?: "the terminal", strerror(-r));
        }
        return tui_run(&(TuiOptions) { .shell_after = true });
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
                { "unattended", verb_unattended },
                { "tpm", verb_tpm },
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
