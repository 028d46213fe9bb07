/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "secret.h"

Secret *secret_new(size_t size) {
        size_t page = (size_t) sysconf(_SC_PAGESIZE), total;
        Secret *s;

        if (size > SIZE_MAX / 2)
                return errno = ENOMEM, NULL;
        total = ROUND_UP(sizeof(Secret) + size + 1, page);
        /* mmap, not malloc: the pages are ours alone, so mlock and madvise affect nothing else. */
        s = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (s == MAP_FAILED)
                return NULL;
        /* Not in core dumps, not inherited by children; locked where the limit allows (an
         * unprivileged process may only lock 8 MiB; failing that, the other protections stay). */
        (void) madvise(s, total, MADV_DONTDUMP);
        (void) madvise(s, total, MADV_WIPEONFORK);
        (void) mlock(s, total);
        s->size = size;
        s->allocated = total;
        return s;
}

Secret *secret_new_from(const void *buf, size_t size) {
        Secret *s = secret_new(size);

        if (s && size > 0)
                memcpy(s->data, buf, size);
        return s;
}

void secret_wipe(void *p, size_t n) {
        if (p && n > 0)
                explicit_bzero(p, n);
}

Secret *secret_free(Secret *s) {
        size_t total;

        if (!s)
                return NULL;
        total = s->allocated;
        explicit_bzero(s, total);
        (void) munlock(s, total);
        (void) munmap(s, total);
        return NULL;
}
