/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The regression half of the fuzz targets, for builds without libFuzzer (gcc): runs
 * LLVMFuzzerTestOneInput() once on every file named on the command line, and on every regular
 * file inside each directory named (a seed corpus, tests/fuzz/corpus/TARGET/). A crash or a
 * sanitizer report fails the test; the result of each input does not matter, only that it is
 * handled. Exits 1 when a directory is empty or unreadable, so a lost corpus does not pass. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int run_file(const char *path) {
        FILE *f = fopen(path, "re");
        uint8_t *buf = NULL;
        long n;

        if (!f || fseek(f, 0, SEEK_END) < 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) < 0) {
                fprintf(stderr, "Cannot read %s: %s\n", path, strerror(errno));
                if (f)
                        fclose(f);
                return -1;
        }
        /* A copy of exactly the file's size, so that ASan sees reads past the end. */
        buf = malloc(n > 0 ? (size_t) n : 1);
        if (!buf || (n > 0 && fread(buf, 1, (size_t) n, f) != (size_t) n)) {
                fprintf(stderr, "Cannot read %s\n", path);
                free(buf);
                fclose(f);
                return -1;
        }
        fclose(f);
        (void) LLVMFuzzerTestOneInput(buf, (size_t) n);
        free(buf);
        return 0;
}

static int compare(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static int run_dir(const char *dir, unsigned *count) {
        DIR *d = opendir(dir);
        char **names = NULL;
        size_t n = 0;
        struct dirent *de;
        int r = 0;

        if (!d) {
                fprintf(stderr, "Cannot open %s: %s\n", dir, strerror(errno));
                return -1;
        }
        while ((de = readdir(d))) {
                char **t;

                if (de->d_name[0] == '.')
                        continue;
                t = realloc(names, (n + 1) * sizeof(char *));
                if (!t || asprintf(&t[n], "%s/%s", dir, de->d_name) < 0)
                        abort();
                names = t;
                n++;
        }
        closedir(d);
        qsort(names, n, sizeof(char *), compare);
        for (size_t i = 0; i < n; i++) {
                struct stat st;

                if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
                        if (run_file(names[i]) < 0)
                                r = -1;
                        else
                                (*count)++;
                }
                free(names[i]);
        }
        free(names);
        return r;
}

int main(int argc, char *argv[]) {
        unsigned count = 0;
        int r = 0;

        if (argc < 2) {
                fprintf(stderr, "Usage: %s CORPUS-DIR|FILE…\n", argv[0]);
                return 2;
        }
        for (int i = 1; i < argc; i++) {
                struct stat st;
                unsigned before = count;

                if (stat(argv[i], &st) < 0) {
                        fprintf(stderr, "Cannot find %s: %s\n", argv[i], strerror(errno));
                        r = -1;
                } else if (S_ISDIR(st.st_mode)) {
                        if (run_dir(argv[i], &count) < 0)
                                r = -1;
                        if (count == before) {
                                fprintf(stderr, "%s holds no inputs.\n", argv[i]);
                                r = -1;
                        }
                } else if (run_file(argv[i]) < 0)
                        r = -1;
                else
                        count++;
        }
        printf("%u inputs handled\n", count);
        return r < 0 ? 1 : 0;
}
