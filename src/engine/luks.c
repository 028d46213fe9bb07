/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <libcryptsetup.h>
#include <linux/fs.h>

#include "error.h"
#include "i18n.h"
#include "log.h"
#include "luks.h"

struct LuksVolume {
        struct crypt_device *cd;
        char *device;
        bool fast_kdf;       /* formatted with fast_kdf_for_tests */
        bool has_volume_key; /* formatted in this context: libcryptsetup still holds the generated key */
        Secret *unlock;      /* from luks_unlock(): a passphrase that opens an existing keyslot */
};

/* systemd's minimal PBKDF for keys that carry their own entropy (formats.md §3.2;
 * cryptsetup_set_minimal_pbkdf() in systemd's src/shared/cryptsetup-util.c). */
static const struct crypt_pbkdf_type pbkdf_minimal = {
        .type = CRYPT_KDF_PBKDF2,
        .hash = "sha512",
        .iterations = 1000,
        .flags = CRYPT_PBKDF_NO_BENCHMARK,
};

/* What the test images use for typed passphrases (vm-rig.md: --pbkdf pbkdf2
 * --pbkdf-force-iterations 1000; the hash is cryptsetup's default). */
static const struct crypt_pbkdf_type pbkdf_fast_tests = {
        .type = CRYPT_KDF_PBKDF2,
        .hash = "sha256",
        .iterations = 1000,
        .flags = CRYPT_PBKDF_NO_BENCHMARK,
};

/* cryptsetup's documented LUKS2 defaults, for a libcryptsetup built with another default type. */
static const struct crypt_pbkdf_type pbkdf_argon2id_fallback = {
        .type = CRYPT_KDF_ARGON2ID,
        .hash = "sha256",
        .time_ms = 2000,
        .max_memory_kb = 1024 * 1024,
        .parallel_threads = 4,
};

/* The last error line libcryptsetup reported on this thread: its messages say why (too small, not
 * a LUKS device, device in use), so they become the reason in our error sentence. */
static _Thread_local char last_error[512];

static void luks_log(int level, const char *msg, void *userdata) {
        char line[sizeof(last_error)];
        size_t n;

        /* Debug output (only produced when crypt_set_debug_level() is raised) carries whole JSON
         * headers and is left out. The other levels name devices, keyslots and failures; the
         * library never puts a passphrase or key into a message. */
        if (!msg || (level != CRYPT_LOG_NORMAL && level != CRYPT_LOG_ERROR && level != CRYPT_LOG_VERBOSE))
                return;

        snprintf(line, sizeof(line), "%s", msg);
        n = strlen(line);
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == ' '))
                line[--n] = 0;
        if (n == 0)
                return;

        if (level == CRYPT_LOG_ERROR)
                memcpy(last_error, line, n + 1);
        log_debug("libcryptsetup: %s", line);
}

static void luks_error_reset(void) {
        last_error[0] = 0;
}

/* "<what>: <libcryptsetup's reason, or strerror>.", what being "Cannot …" (translated). */
_printf_(2, 3) static int luks_fail(int r, const char *fmt, ...) {
        char what[512];
        const char *end;
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(what, sizeof(what), fmt, ap);
        va_end(ap);

        if (!last_error[0])
                /* TRANSLATORS: what failed ("Cannot …"), then why. */
                return error_setf(r, _("%s: %s."), what, strerror(-r));
        end = last_error + strlen(last_error) - 1;
        /* libcryptsetup's reason is English: it has no catalog of its own. */
        return error_setf(r, _("%s: %s%s"), what, last_error, strchr(".!?)", *end) ? "" : ".");
}

static int luks_new(const char *device, LuksVolume **ret) {
        _cleanup_(luks_freep) LuksVolume *v = NULL;
        int r;

        if (isempty(device))
                return error_setf(-EINVAL, "Cannot open a LUKS volume: no device given.");

        v = calloc(1, sizeof(*v));
        if (!v)
                return -ENOMEM;
        v->device = strdup(device);
        if (!v->device)
                return -ENOMEM;

        /* The default callback too: crypt_init() reports before a context exists, and
         * libcryptsetup's own default would print to stderr. */
        crypt_set_log_callback(NULL, luks_log, NULL);
        luks_error_reset();

        r = crypt_init(&v->cd, device);
        if (r < 0)
                return luks_fail(r, _("Cannot open %s for LUKS2"), device);
        crypt_set_log_callback(v->cd, luks_log, NULL);

        *ret = TAKE_PTR(v);
        return 0;
}

static int luks_load(LuksVolume *v) {
        int r;

        luks_error_reset();
        r = crypt_load(v->cd, CRYPT_LUKS2, NULL);
        if (r == -EINVAL && !last_error[0])
                return error_setf(r, _("Cannot read the LUKS2 header of %s: there is none (not a LUKS2 volume, or its header is damaged)."),
                                  v->device);
        if (r < 0)
                return luks_fail(r, _("Cannot read the LUKS2 header of %s"), v->device);
        return 0;
}

/* The size of a block device or regular file, and whether it is a regular file. */
static int device_size(const char *device, uint64_t *ret_size, bool *ret_regular) {
        _cleanup_(closep) int fd = -EBADF;
        struct stat st;

        fd = open(device, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0)
                return error_setf(negative_errno(), _("Cannot open %s: %s."), device, strerror(errno));
        if (S_ISREG(st.st_mode)) {
                *ret_size = (uint64_t) st.st_size;
                *ret_regular = true;
                return 0;
        }
        if (!S_ISBLK(st.st_mode))
                return error_setf(-ENOTBLK, _("Cannot format %s: it is neither a block device nor an image file."), device);
        if (ioctl(fd, BLKGETSIZE64, ret_size) < 0)
                return error_setf(negative_errno(), _("Cannot read the size of %s: %s."), device, strerror(errno));
        *ret_regular = false;
        return 0;
}

int luks_format(const char *device, sd_id128_t uuid, const LuksFormatOptions *o, LuksVolume **ret) {
        static const LuksFormatOptions defaults = {};
        _cleanup_(luks_freep) LuksVolume *v = NULL;
        struct crypt_params_luks2 params;
        uint64_t size = 0, offset;
        uint32_t sector_size;
        bool regular = false;
        int r;

        if (!o)
                o = &defaults;

        /* 512 unless asked otherwise, as systemd-repart does: an image formatted here may land on a
         * disk with either sector size, and a 512-byte encryption sector works on both. */
        sector_size = o->sector_size ?: 512;
        if (sector_size < 512 || sector_size > 4096 || (sector_size & (sector_size - 1)) != 0)
                return error_setf(-EINVAL, _("Cannot format %s: the encryption sector size must be 512, 1024, 2048 or 4096 bytes, not %" PRIu32 "."),
                                  device ?: "", sector_size);
        /* The LUKS2 binary header has 48 bytes for the label, NUL included. */
        if (o->label && strlen(o->label) > 47)
                return error_setf(-EINVAL, _("Cannot format %s: the LUKS2 label \"%s\" is longer than 47 bytes."),
                                  device ?: "", o->label);

        r = luks_new(device, &v);
        if (r < 0)
                return r;
        r = device_size(device, &size, &regular);
        if (r < 0)
                return r;

        params = (struct crypt_params_luks2) {
                .label = o->label,
                .sector_size = sector_size,
        };

        luks_error_reset();
        /* No volume key passed: libcryptsetup generates it and keeps it in this context, where
         * crypt_keyslot_add_by_volume_key(…, NULL, …) finds it. */
        r = crypt_format(v->cd, CRYPT_LUKS2, "aes", "xts-plain64",
                         sd_id128_is_null(uuid) ? NULL : SD_ID128_TO_UUID_STRING(uuid),
                         NULL, LUKS_VOLUME_KEY_SIZE, &params);
        if (r < 0)
                return luks_fail(r, _("Cannot write a LUKS2 header to %s"), device);

        /* libcryptsetup extends a regular file that is smaller than the header (it could be a
         * detached header); here it must hold the payload too. */
        offset = luks_data_offset(v);
        if (size <= offset) {
                if (regular)
                        (void) truncate(device, (off_t) size);
                return error_setf(-ENOSPC, _("Cannot format %s: it has %" PRIu64 " bytes, and the LUKS2 header alone takes %" PRIu64 "."),
                                  device, size, offset);
        }

        v->has_volume_key = true;
        v->fast_kdf = o->fast_kdf_for_tests;

        log_info("Formatted LUKS2 on %s: aes-xts-plain64, %d-bit key, %" PRIu32 "-byte sectors, label \"%s\", payload at %" PRIu64 " bytes.",
                 device, LUKS_VOLUME_KEY_SIZE * 8, sector_size, o->label ?: "", offset);

        *ret = TAKE_PTR(v);
        return 0;
}

int luks_open_header(const char *device, LuksVolume **ret) {
        _cleanup_(luks_freep) LuksVolume *v = NULL;
        int r;

        r = luks_new(device, &v);
        if (r < 0)
                return r;
        r = luks_load(v);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(v);
        return 0;
}

LuksVolume *luks_free(LuksVolume *v) {
        if (!v)
                return NULL;
        /* crypt_free() wipes the volume key it holds. */
        crypt_free(v->cd);
        secret_free(v->unlock);
        free(v->device);
        free(v);
        return NULL;
}

const char *luks_device(const LuksVolume *v) {
        return v ? v->device : NULL;
}

uint64_t luks_data_offset(LuksVolume *v) {
        if (!v || !v->cd)
                return 0;
        /* libcryptsetup counts in 512-byte units whatever the encryption sector size. */
        return crypt_get_data_offset(v->cd) * 512;
}

static bool keyslot_in_use(LuksVolume *v, int slot) {
        switch (crypt_keyslot_status(v->cd, slot)) {
        case CRYPT_SLOT_ACTIVE:
        case CRYPT_SLOT_ACTIVE_LAST:
        case CRYPT_SLOT_UNBOUND:
                return true;
        default:
                return false;
        }
}

int luks_unlock(LuksVolume *v, const Secret *passphrase) {
        Secret *copy;
        int slot;

        if (!passphrase || passphrase->size == 0)
                return error_setf(-EINVAL, _("Cannot unlock %s: the key is empty."), v->device);

        luks_error_reset();
        /* A NULL name only checks the passphrase against the keyslots; nothing is activated. */
        slot = crypt_activate_by_passphrase(v->cd, NULL, CRYPT_ANY_SLOT,
                                            (const char *) passphrase->data, passphrase->size, 0);
        if (slot == -EPERM)
                return error_setf(-EPERM, _("Cannot unlock %s: no keyslot accepts this key."), v->device);
        if (slot < 0)
                return luks_fail(slot, _("Cannot unlock %s"), v->device);

        copy = secret_new_from(passphrase->data, passphrase->size);
        if (!copy)
                return negative_errno();
        secret_free(v->unlock);
        v->unlock = copy;

        log_debug("A key for keyslot %d of %s was given; new keys can be added.", slot, v->device);
        return slot;
}

static int luks_add_key(LuksVolume *v, const Secret *passphrase, const struct crypt_pbkdf_type *pbkdf, const char *kind) {
        int r;

        if (!passphrase || passphrase->size == 0)
                /* TRANSLATORS: %s is "passphrase" or "high-entropy key", then the device. */
                return error_setf(-EINVAL, _("Cannot add a %s to %s: it is empty."), _(kind), v->device);
        if (!v->has_volume_key && !v->unlock)
                return error_setf(-ENOKEY, _("Cannot add a %s to %s: the volume is locked; an existing key is needed first."),
                                  _(kind), v->device);

        luks_error_reset();
        r = crypt_set_pbkdf_type(v->cd, pbkdf);
        if (r < 0)
                return luks_fail(r, _("Cannot set the key derivation (%s) for a new keyslot of %s"), pbkdf->type, v->device);

        if (v->has_volume_key)
                r = crypt_keyslot_add_by_volume_key(v->cd, CRYPT_ANY_SLOT, NULL, 0,
                                                    (const char *) passphrase->data, passphrase->size);
        else
                r = crypt_keyslot_add_by_passphrase(v->cd, CRYPT_ANY_SLOT,
                                                    (const char *) v->unlock->data, v->unlock->size,
                                                    (const char *) passphrase->data, passphrase->size);
        if (r < 0)
                return luks_fail(r, _("Cannot add a keyslot for a %s to %s"), _(kind), v->device);

        log_info("Added keyslot %d (%s, %s) to %s.", r, kind, pbkdf->type, v->device);
        return r;
}

int luks_add_key_high_entropy(LuksVolume *v, const Secret *passphrase) {
        /* TRANSLATORS: a kind of key, put into "Cannot add a %s to %s"; give it the article it needs there. */
        return luks_add_key(v, passphrase, &pbkdf_minimal, N_("high-entropy key"));
}

int luks_add_key_passphrase(LuksVolume *v, const Secret *passphrase) {
        const struct crypt_pbkdf_type *pbkdf;

        if (v->fast_kdf)
                pbkdf = &pbkdf_fast_tests;
        else {
                /* libcryptsetup's defaults (time and memory cost, threads), benchmarked on this
                 * machine when the keyslot is created. */
                pbkdf = crypt_get_pbkdf_default(CRYPT_LUKS2);
                if (!pbkdf || !streq_ptr(pbkdf->type, CRYPT_KDF_ARGON2ID))
                        pbkdf = &pbkdf_argon2id_fallback;
        }
        /* TRANSLATORS: a kind of key, put into "Cannot add a %s to %s"; give it the article it needs there. */
        return luks_add_key(v, passphrase, pbkdf, N_("passphrase"));
}

/* A keyslot reference in a token: a decimal string naming a keyslot in use. */
static int token_keyslot(LuksVolume *v, json_object *e, const char *type, int *ret) {
        const char *s = json_object_is_type(e, json_type_string) ? json_object_get_string(e) : NULL;
        char *end = NULL;
        long slot;

        /* libcryptsetup writes keyslot numbers as plain decimals: no sign, no leading zero. */
        if (isempty(s) || s[0] < '0' || s[0] > '9' || (s[0] == '0' && s[1]))
                return error_setf(-EINVAL, "Cannot add the %s token to %s: its keyslots must be decimal strings.", type, v->device);
        errno = 0;
        slot = strtol(s, &end, 10);
        if (errno != 0 || *end || slot >= crypt_keyslot_max(CRYPT_LUKS2))
                return error_setf(-EINVAL, "Cannot add the %s token to %s: \"%s\" is not a LUKS2 keyslot number.", type, v->device, s);
        if (!keyslot_in_use(v, (int) slot))
                return error_setf(-ENOENT, "Cannot add the %s token to %s: keyslot %ld is not in use.", type, v->device, slot);

        *ret = (int) slot;
        return 0;
}

int luks_add_token(LuksVolume *v, json_object *token) {
        json_object *jtype, *jslots;
        const char *type, *text;
        size_t n;
        int id, slot, r;

        if (!json_object_is_type(token, json_type_object) ||
            !json_object_object_get_ex(token, "type", &jtype) || !json_object_is_type(jtype, json_type_string) ||
            isempty(json_object_get_string(jtype)))
                return error_setf(-EINVAL, "Cannot add a token to %s: it is not a JSON object with a \"type\" string.", v->device);
        type = json_object_get_string(jtype);

        if (!json_object_object_get_ex(token, "keyslots", &jslots) || !json_object_is_type(jslots, json_type_array) ||
            json_object_array_length(jslots) == 0)
                return error_setf(-EINVAL, "Cannot add the %s token to %s: it names no keyslot.", type, v->device);
        n = json_object_array_length(jslots);
        /* systemd takes the one keyslot of its tokens and refuses others (formats.md §3.1,
         * cryptsetup_get_keyslot_from_token()). */
        if (strncmp(type, "systemd-", 8) == 0 && n != 1)
                return error_setf(-EINVAL, "Cannot add the %s token to %s: systemd reads exactly one keyslot from it, not %zu.",
                                  type, v->device, n);
        for (size_t i = 0; i < n; i++) {
                r = token_keyslot(v, json_object_array_get_idx(jslots, i), type, &slot);
                if (r < 0)
                        return r;
        }

        text = json_object_to_json_string_ext(token, JSON_C_TO_STRING_PLAIN);
        if (!text)
                return -ENOMEM;

        luks_error_reset();
        id = crypt_token_json_set(v->cd, CRYPT_ANY_TOKEN, text);
        if (id < 0)
                return luks_fail(id, _("Cannot add the %s token to %s"), type, v->device);

        /* The JSON already lists the keyslots; assigning makes libcryptsetup check each link. */
        for (size_t i = 0; i < n; i++) {
                r = token_keyslot(v, json_object_array_get_idx(jslots, i), type, &slot);
                if (r >= 0) {
                        luks_error_reset();
                        r = crypt_token_assign_keyslot(v->cd, id, slot);
                        if (r < 0)
                                r = luks_fail(r, _("Cannot assign the %s token to keyslot %d of %s"), type, slot, v->device);
                }
                if (r < 0) {
                        (void) crypt_token_json_set(v->cd, id, NULL);
                        return r;
                }
        }

        log_info("Added token %d (%s) to %s.", id, type, v->device);
        return id;
}

static void json_object_putp(json_object **j) {
        if (*j)
                json_object_put(*j);
}

int luks_add_recovery_token(LuksVolume *v, int keyslot) {
        _cleanup_(json_object_putp) json_object *token = NULL;
        json_object *slots;
        char s[16];

        snprintf(s, sizeof(s), "%d", keyslot);
        token = json_object_new_object();
        slots = json_object_new_array();
        if (!token || !slots) {
                json_object_put(slots);
                return -ENOMEM;
        }
        if (json_object_object_add(token, "type", json_object_new_string("systemd-recovery")) < 0 ||
            json_object_object_add(token, "keyslots", slots) < 0 ||
            json_object_array_add(slots, json_object_new_string(s)) < 0)
                return -ENOMEM;

        return luks_add_token(v, token);
}

int luks_erase(LuksVolume *v) {
        int max_slots = crypt_keyslot_max(CRYPT_LUKS2), max_tokens = crypt_token_max(CRYPT_LUKS2);
        int destroyed = 0, r;

        for (int slot = 0; slot < max_slots; slot++) {
                if (!keyslot_in_use(v, slot))
                        continue;
                luks_error_reset();
                /* Overwrites the keyslot's area on disk and drops it from the header: without the
                 * wrapped copies the volume key cannot be recovered. */
                r = crypt_keyslot_destroy(v->cd, slot);
                if (r < 0)
                        return luks_fail(r, _("Cannot destroy keyslot %d of %s"), slot, v->device);
                destroyed++;
        }

        for (int id = 0; id < MAX(max_tokens, 0); id++) {
                crypt_token_info st = crypt_token_status(v->cd, id, NULL);

                if (st == CRYPT_TOKEN_INACTIVE || st == CRYPT_TOKEN_INVALID)
                        continue;
                luks_error_reset();
                r = crypt_token_json_set(v->cd, id, NULL);
                if (r < 0)
                        return luks_fail(r, _("Cannot remove token %d of %s"), id, v->device);
        }

        /* A context that formatted the volume still holds the volume key: drop it with the context
         * and continue from what is on disk. */
        crypt_free(v->cd);
        v->cd = NULL;
        v->has_volume_key = false;
        v->unlock = secret_free(v->unlock);

        luks_error_reset();
        r = crypt_init(&v->cd, v->device);
        if (r < 0)
                return luks_fail(r, _("Cannot reopen %s after erasing its keys"), v->device);
        crypt_set_log_callback(v->cd, luks_log, NULL);
        r = luks_load(v);
        if (r < 0)
                return r;

        log_info("Erased %d keyslot(s) of %s: no key opens it any more.", destroyed, v->device);
        return 0;
}

uint64_t luks_keyslots_in_use(LuksVolume *v) {
        int max_slots = MIN(crypt_keyslot_max(CRYPT_LUKS2), 64);
        uint64_t mask = 0;

        for (int slot = 0; slot < max_slots; slot++)
                if (keyslot_in_use(v, slot))
                        mask |= UINT64_C(1) << slot;
        return mask;
}

/* The keyslots a token names, as a mask. */
static uint64_t token_slots(json_object *token) {
        json_object *slots = NULL;
        uint64_t mask = 0;

        if (!json_object_object_get_ex(token, "keyslots", &slots) || !json_object_is_type(slots, json_type_array))
                return 0;
        for (size_t i = 0; i < json_object_array_length(slots); i++) {
                const char *s = json_object_get_string(json_object_array_get_idx(slots, i));
                char *end = NULL;
                long n;

                if (isempty(s))
                        continue;
                errno = 0;
                n = strtol(s, &end, 10);
                if (errno == 0 && !*end && n >= 0 && n < 64)
                        mask |= UINT64_C(1) << n;
        }
        return mask;
}

static int token_get(LuksVolume *v, int id, json_object **ret) {
        const char *text = NULL;
        json_object *j;
        int r;

        r = crypt_token_json_get(v->cd, id, &text);
        if (r < 0 || !text)
                return -ENOENT;
        j = json_tokener_parse(text);
        if (!j || !json_object_is_type(j, json_type_object)) {
                json_object_put(j);
                return -EBADMSG;
        }
        *ret = j;
        return 0;
}

int luks_token_find(LuksVolume *v, const char *type, json_object **ret) {
        int max_tokens = crypt_token_max(CRYPT_LUKS2);

        for (int id = 0; id < MAX(max_tokens, 0); id++) {
                crypt_token_info st = crypt_token_status(v->cd, id, NULL);
                json_object *j = NULL, *t = NULL;

                if (st == CRYPT_TOKEN_INACTIVE || st == CRYPT_TOKEN_INVALID)
                        continue;
                if (token_get(v, id, &j) < 0)
                        continue;
                if (json_object_object_get_ex(j, "type", &t) && streq_ptr(json_object_get_string(t), type)) {
                        *ret = j;
                        return id;
                }
                json_object_put(j);
        }
        return -ENOENT;
}

int luks_remove_keyslots(LuksVolume *v, uint64_t mask, unsigned *ret_destroyed) {
        int max_slots = MIN(crypt_keyslot_max(CRYPT_LUKS2), 64), max_tokens = crypt_token_max(CRYPT_LUKS2);
        unsigned destroyed = 0;
        int r;

        /* The tokens first: a token naming a keyslot that is gone would send systemd-cryptsetup
         * to an empty slot. */
        for (int id = 0; id < MAX(max_tokens, 0); id++) {
                crypt_token_info st = crypt_token_status(v->cd, id, NULL);
                json_object *j = NULL;
                bool drop;

                if (st == CRYPT_TOKEN_INACTIVE || st == CRYPT_TOKEN_INVALID)
                        continue;
                if (token_get(v, id, &j) < 0)
                        continue;
                drop = (token_slots(j) & mask) != 0;
                json_object_put(j);
                if (!drop)
                        continue;
                luks_error_reset();
                r = crypt_token_json_set(v->cd, id, NULL);
                if (r < 0)
                        return luks_fail(r, _("Cannot remove token %d of %s"), id, v->device);
        }
        for (int slot = 0; slot < max_slots; slot++) {
                if (!(mask & (UINT64_C(1) << slot)) || !keyslot_in_use(v, slot))
                        continue;
                luks_error_reset();
                r = crypt_keyslot_destroy(v->cd, slot);
                if (r < 0)
                        return luks_fail(r, _("Cannot destroy keyslot %d of %s"), slot, v->device);
                destroyed++;
        }
        log_info("Destroyed %u old keyslot(s) of %s.", destroyed, v->device);
        if (ret_destroyed)
                *ret_destroyed = destroyed;
        return 0;
}

int luks_activate(LuksVolume *v, const char *name, char **ret_path) {
        _cleanup_(freep) char *path = NULL;
        int r;

        if (isempty(name) || strchr(name, '/'))
                return error_setf(-EINVAL, _("Cannot open %s: \"%s\" is not a device-mapper name."), v->device, name ?: "");
        if (asprintf(&path, "%s/%s", crypt_get_dir(), name) < 0)
                return -ENOMEM;

        luks_error_reset();
        if (v->has_volume_key)
                /* Right after luks_format() the context holds the volume key it generated. */
                r = crypt_activate_by_volume_key(v->cd, name, NULL, 0, 0);
        else if (v->unlock)
                r = crypt_activate_by_passphrase(v->cd, name, CRYPT_ANY_SLOT, (const char *) v->unlock->data, v->unlock->size, 0);
        else
                return error_setf(-ENOKEY, "Cannot open %s: no key was given (luks_unlock()).", v->device);
        if (r == -ENODEV || r == -ENOTSUP)
                return error_setf(r, _("Cannot open the LUKS2 volume %s as %s: this system has no device-mapper with dm-crypt (%s)."),
                                  v->device, path, last_error[0] ? last_error : strerror(-r));
        if (r < 0)
                return luks_fail(r, _("Cannot open the LUKS2 volume %s as %s"), v->device, path);

        log_info("Opened %s as %s.", v->device, path);
        if (ret_path)
                *ret_path = TAKE_PTR(path);
        return 0;
}

int luks_deactivate(const char *name) {
        struct crypt_device *cd = NULL;
        int r;

        luks_error_reset();
        r = crypt_init_by_name(&cd, name);
        if (r == -ENODEV)
                return 0; /* not active: nothing to close */
        if (r < 0)
                return luks_fail(r, _("Cannot find the open volume %s"), name);
        crypt_set_log_callback(cd, luks_log, NULL);
        r = crypt_deactivate(cd, name);
        crypt_free(cd);
        if (r < 0)
                return luks_fail(r, _("Cannot close the volume %s"), name);
        log_debug("Closed %s.", name);
        return 0;
}

int luks_dm_available(void) {
        int fd;

        /* libdevmapper talks to the kernel through this node; without the dm module there is no
         * node or opening it fails with ENODEV. dm-crypt itself is loaded on first use. */
        fd = open("/dev/mapper/control", O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return error_setf(errno == ENOENT || errno == ENODEV || errno == ENXIO ? -ENODEV : -errno,
                                  _("This system has no device-mapper (/dev/mapper/control: %s), which encryption needs: the installer "
                                    "writes through an opened dm-crypt volume. Boot a system whose kernel has dm-crypt (the live medium "
                                    "does), or install without encryption."),
                                  strerror(errno));
        close(fd);
        return 0;
}
