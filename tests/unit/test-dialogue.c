/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The recovery key hand-over that every front end runs (src/dialogue.c), driven the way a person
 * at a terminal would: the dialogue runs in a thread on two pipes; this side reads what it shows,
 * finds which groups it asks for, and answers. What is checked:
 *   - the key is shown, as text and as a QR code, with the note on its letters;
 *   - typing the two asked-for groups (in any case, with spaces or dashes) lets the install go on;
 *   - wrong groups are refused with the groups named, and asked again; the key is shown again
 *     after three failed attempts;
 *   - "q" and the end of input stop without confirmation (0), so nothing is written.
 * No root needed. */

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dialogue.h"
#include "recovery.h"
#include "secret.h"
#include "tests.h"

typedef struct Run {
        Plan plan;
        Secret *key;
        FILE *in, *out;
        int result;
} Run;

static void *run_dialogue(void *userdata) {
        Run *r = userdata;

        r->result = recovery_key_dialogue(&r->plan, r->key, r->in, r->out);
        fclose(r->out); /* end of output: the reader sees EOF */
        return NULL;
}

/* Reads what the dialogue printed until it asks for groups (returns 1 and the two numbers) or
 * the output ends (returns 0). Everything read is appended to transcript. */
static int read_until_question(int fd, char *transcript, size_t size, size_t *from, unsigned *a, unsigned *b) {
        for (;;) {
                size_t n = strlen(transcript);
                const char *q;
                ssize_t k;

                /* The first question after the one answered last, if it is complete. */
                q = strstr(transcript + *from, "type groups ");
                if (q && sscanf(q, "type groups %u and %u", a, b) == 2 && strstr(q, "cancels): ")) {
                        const char *end = strstr(q, "cancels): ") + strlen("cancels): ");
                        *from = (size_t) (end - transcript);
                        return 1;
                }
                ASSERT_TRUE(n + 1 < size);
                k = read(fd, transcript + n, size - n - 1);
                ASSERT_TRUE(k >= 0);
                if (k == 0)
                        return 0;
                transcript[n + k] = 0;
        }
}

static void group_text(const Secret *key, unsigned g, char out[9]) {
        memcpy(out, key->data + (g - 1) * 9, 8);
        out[8] = 0;
}

static size_t count(const char *hay, const char *needle) {
        size_t n = 0;
        for (const char *p = hay; (p = strstr(p, needle)); p++)
                n++;
        return n;
}

typedef enum Answer { RIGHT, RIGHT_MESSY, WRONG, QUIT } Answer;

/* Runs one dialogue with the answers given, returns its result and the transcript. */
static int dialogue(const Secret *key, const Answer *answers, size_t n_answers, char *transcript, size_t size,
                    size_t *ret_questions) {
        int to_dialogue[2], from_dialogue[2];
        pthread_t t;
        size_t asked = 0, from = 0;
        Run r = {
                .plan = { .target_name = (char *) "vdb", .target = (char *) "/dev/vdb" },
                .key = (Secret *) key,
        };

        ASSERT_OK(pipe(to_dialogue));
        ASSERT_OK(pipe(from_dialogue));
        r.in = fdopen(to_dialogue[0], "r");
        r.out = fdopen(from_dialogue[1], "w");
        ASSERT_TRUE(r.in && r.out);
        transcript[0] = 0;
        ASSERT_EQ(pthread_create(&t, NULL, run_dialogue, &r), 0);

        for (;;) {
                unsigned a, b;
                char ga[9], gb[9], line[64];

                if (!read_until_question(from_dialogue[0], transcript, size, &from, &a, &b))
                        break;
                ASSERT_TRUE(a >= 1 && a <= 8 && b >= 1 && b <= 8 && a < b);
                if (asked == n_answers) {
                        close(to_dialogue[1]); /* end of input */
                        to_dialogue[1] = -1;
                        asked++;
                        continue;
                }
                group_text(key, a, ga);
                group_text(key, b, gb);
                switch (answers[asked++]) {
                case RIGHT:
                        snprintf(line, sizeof(line), "%s%s\n", ga, gb);
                        break;
                case RIGHT_MESSY:
                        for (char *p = ga; *p; p++)
                                *p = (char) toupper((unsigned char) *p);
                        snprintf(line, sizeof(line), "  %.4s %.4s-%s \n", ga, ga + 4, gb);
                        break;
                case WRONG:
                        /* The right letters of the other groups: plausible, wrong. */
                        group_text(key, a == 1 ? 2 : 1, ga);
                        snprintf(line, sizeof(line), "%s%s\n", ga, gb);
                        break;
                case QUIT:
                        snprintf(line, sizeof(line), "q\n");
                        break;
                }
                ASSERT_EQ(write(to_dialogue[1], line, strlen(line)), (ssize_t) strlen(line));
        }
        ASSERT_EQ(pthread_join(t, NULL), 0);
        fclose(r.in);
        if (to_dialogue[1] >= 0)
                close(to_dialogue[1]);
        close(from_dialogue[0]);
        *ret_questions = asked;
        return r.result;
}

int main(void) {
        _cleanup_(secret_freep) Secret *key = NULL;
        static char transcript[1 << 20];
        size_t asked;
        int r;

        ASSERT_OK(recovery_key_generate(&key));

        /* Right at once: shown as text and QR code, with the explanation; confirmed. */
        r = dialogue(key, (Answer[]) { RIGHT }, 1, transcript, sizeof(transcript), &asked);
        ASSERT_EQ(r, 1);
        ASSERT_EQ(asked, 1);
        ASSERT_TRUE(strstr(transcript, (const char *) key->data));
        ASSERT_TRUE(strstr(transcript, "RECOVERY KEY for the encrypted disk vdb"));
        ASSERT_TRUE(strstr(transcript, recovery_key_explanation()));
        ASSERT_TRUE(strstr(transcript, "Nothing has been written to the disk yet"));
        ASSERT_TRUE(count(transcript, "##") > 100); /* the QR code, in ASCII under the C locale */
        ASSERT_TRUE(strstr(transcript, "the recovery key is confirmed"));
        printf("ok: the key is shown with its QR code and confirmed by typing two groups\n");

        /* Case, spaces and dashes do not matter. */
        r = dialogue(key, (Answer[]) { RIGHT_MESSY }, 1, transcript, sizeof(transcript), &asked);
        ASSERT_EQ(r, 1);
        printf("ok: upper case, spaces and dashes are accepted\n");

        /* Wrong, then right: the wrong group is named, the question comes again. */
        r = dialogue(key, (Answer[]) { WRONG, RIGHT }, 2, transcript, sizeof(transcript), &asked);
        ASSERT_EQ(r, 1);
        ASSERT_EQ(asked, 2);
        ASSERT_TRUE(strstr(transcript, "does not match what was typed"));
        ASSERT_EQ(count(transcript, (const char *) key->data), 1);
        printf("ok: a wrong group is refused and named, then the right one is accepted\n");

        /* Three wrong answers: the key is shown again before the fourth try. */
        r = dialogue(key, (Answer[]) { WRONG, WRONG, WRONG, RIGHT }, 4, transcript, sizeof(transcript), &asked);
        ASSERT_EQ(r, 1);
        ASSERT_EQ(count(transcript, (const char *) key->data), 2);
        printf("ok: after three wrong attempts the key is shown again\n");

        /* "q" and the end of input stop: nothing is confirmed. */
        r = dialogue(key, (Answer[]) { WRONG, QUIT }, 2, transcript, sizeof(transcript), &asked);
        ASSERT_EQ(r, 0);
        ASSERT_TRUE(!strstr(transcript, "confirmed"));
        r = dialogue(key, NULL, 0, transcript, sizeof(transcript), &asked);
        ASSERT_EQ(r, 0);
        printf("ok: q and the end of input cancel (nothing is written)\n");
        return 0;
}
