/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Screen 7: progress, drawn from the executor's progress events: one bar per step, an overall
 * bar, the bytes, rate and time left of the running step. L toggles the live log (what the
 * engine logs: every step, every command it runs). Keys are read between events, so a resize
 * redraws at the next event (at least ten times a second while data moves). */

#include <curses.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "size.h"
#include "ui.h"

#define MAX_STEPS 64

typedef struct StepView {
        char *description;
        char *id;
        uint64_t done, total;
        uint64_t elapsed_usec;
        enum { STEP_PENDING, STEP_RUNNING, STEP_DONE, STEP_FAILED } state;
} StepView;

static struct {
        unsigned n_steps, current;  /* current: 1-based, 0 before the first */
        StepView steps[MAX_STEPS];
        uint64_t rate;
        int64_t eta_usec;
        bool show_log;
        uint64_t last_draw_usec;
        const Plan *plan;
} pg;

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

void ui_progress_reset(Tui *t) {
        for (unsigned i = 0; i < MAX_STEPS; i++) {
                free(pg.steps[i].description);
                free(pg.steps[i].id);
        }
        memset(&pg, 0, sizeof(pg));
        pg.eta_usec = -1;
}

/* What a step weighs in the overall bar: the bytes it moves (reading the image, copying,
 * reading back), and for steps without a size what they cost in time on a typical machine,
 * in the same unit: formatting a LUKS2 volume (argon2id, TPM sealing) about as long as moving
 * 512 MiB, anything else (a partition table, a filesystem, the boot loader) about 32 MiB. */
static double step_weight(const StepView *s) {
        if (s->total > 1)
                return (double) s->total;
        if (s->id && strncmp(s->id, "encrypt-", 8) == 0)
                return 512.0 * 1024 * 1024;
        return 32.0 * 1024 * 1024;
}

static void draw(Tui *t) {
        char line[512];
        int y0 = 4, y1, y;

        bool reset = pg.plan && pg.plan->mode == PLAN_RESET;

        if (!ui_frame(t, reset ? _("Resetting") : _("Installing"), 0, pg.show_log ? _("F1 Help  L Show the steps") : _("F1 Help  L Show the log"))) {
                refresh();
                return;
        }
        curs_set(0);
        if (reset)
                /* TRANSLATORS: %s is the disk being reset. */
                snprintf(line, sizeof(line), _("Resetting %s"), pg.plan->target);
        else if (pg.plan && pg.plan->source)
                /* TRANSLATORS: first %s is the OS name, second the target's path. */
                snprintf(line, sizeof(line), _("Installing %s on %s"), pg.plan->source->os_name ?: _("the system"), pg.plan->target);
        else
                snprintf(line, sizeof(line), _("Writing to %s"), pg.plan ? pg.plan->target : "");
        ui_text(2, 2, COLS - 4, A_BOLD, line);
        y1 = LINES - 6;

        if (pg.show_log) {
                size_t rows = (size_t) (y1 - y0), n = MIN(t->n_log, (size_t) UI_LOG_LINES), first = n > rows ? n - rows : 0;
                for (size_t i = first; i < n; i++) {
                        size_t k = (t->n_log - n + i) % UI_LOG_LINES;
                        ui_text(y0 + (int) (i - first), 2, COLS - 4, 0, t->log_lines[k] ?: "");
                }
        } else {
                /* Scroll so that the running step stays in view. */
                unsigned rows = (unsigned) (y1 - y0), first = 0;
                if (pg.current > rows)
                        first = pg.current - rows;
                y = y0;
                for (unsigned i = first; i < pg.n_steps && i < MAX_STEPS && y < y1; i++, y++) {
                        const StepView *s = &pg.steps[i];
                        int bw = 22;

                        if (s->state == STEP_PENDING) {
                                /* Announced by the executor ("planned") before the first step. */
                                ui_text(y, 2 + bw + 2, COLS - bw - 6, ui_attr_dim(), s->description ?: "");
                                continue;
                        }
                        ui_bar(t, y, 2, bw, s->state == STEP_DONE ? 1 : s->done, s->state == STEP_DONE ? 1 : MAX(s->total, 1));
                        ui_text(y, 2 + bw + 2, COLS - bw - 6,
                                s->state == STEP_FAILED ? ui_attr_error() : s->state == STEP_RUNNING ? (int) A_BOLD : 0, s->description);
                }
        }

        /* The overall bar: the finished steps plus the running step's share, each step weighted
         * by the work in it (step_weight()), so that it moves as the install does. */
        {
                double frac = 0, all = 0;
                for (unsigned i = 0; i < pg.n_steps && i < MAX_STEPS; i++) {
                        const StepView *s = &pg.steps[i];
                        double w = step_weight(s);

                        all += w;
                        if (s->state == STEP_DONE)
                                frac += w;
                        else if (s->state == STEP_RUNNING && s->total > 1)
                                frac += w * (double) MIN(s->done, s->total) / (double) s->total;
                }
                if (all > 0)
                        frac /= all;
                ui_text(LINES - 5, 2, 12, A_BOLD, _("Overall"));
                ui_bar(t, LINES - 5, 14, COLS - 16, (uint64_t) (frac * 10000), 10000);
        }
        if (pg.current > 0 && pg.current <= MAX_STEPS) {
                const StepView *s = &pg.steps[pg.current - 1];
                if (s->state == STEP_RUNNING && s->total > 1) {
                        char eta[64] = "";
                        if (pg.eta_usec >= 0)
                                /* TRANSLATORS: time left, minutes:seconds. */
                                snprintf(eta, sizeof(eta), _(", %" PRIi64 ":%02" PRIi64 " left"), pg.eta_usec / 60000000,
                                         pg.eta_usec / 1000000 % 60);
                        /* TRANSLATORS: bytes done, of the step's total, at a rate per second; then the time left. */
                        snprintf(line, sizeof(line), _("Step %u of %u: %s of %s, %s/s%s"), pg.current, pg.n_steps, FORMAT_BYTES(s->done),
                                 FORMAT_BYTES(s->total), FORMAT_BYTES(pg.rate), eta);
                } else
                        snprintf(line, sizeof(line), _("Step %u of %u"), pg.current, pg.n_steps);
                ui_text(LINES - 4, 2, COLS - 4, 0, line);
        }
        ui_text(LINES - 3, 2, COLS - 4, ui_attr_dim(), _("Do not switch off the computer or remove the disk."));
        refresh();
        pg.last_draw_usec = now_usec();
}

void ui_progress(Tui *t, const ProgressEvent *ev) {
        StepView *s = NULL;
        bool redraw = ev->type != PROGRESS_UPDATE;
        UiKey k;

        t->help = N_("The install is running. Each step has its bar; the overall bar is below. L shows what the installer "
                     "logs (the commands it runs), and L again the steps.");
        pg.n_steps = MIN(ev->n_steps, (unsigned) MAX_STEPS);
        if (ev->step >= 1 && ev->step <= MAX_STEPS) {
                s = &pg.steps[ev->step - 1];
                if (ev->type != PROGRESS_PLANNED)
                        pg.current = ev->step;
        }
        if (s) {
                if (ev->id && (!s->id || !streq(s->id, ev->id))) {
                        free(s->id);
                        s->id = strdup(ev->id);
                }
                switch (ev->type) {
                case PROGRESS_PLANNED:
                        free(s->description);
                        s->description = strdup(ev->description);
                        s->state = STEP_PENDING;
                        s->total = ev->total;
                        s->done = 0;
                        break;
                case PROGRESS_BEGIN:
                        free(s->description);
                        s->description = strdup(ev->description);
                        s->state = STEP_RUNNING;
                        s->total = ev->total;
                        s->done = 0;
                        pg.eta_usec = -1;
                        pg.rate = 0;
                        break;
                case PROGRESS_UPDATE:
                        s->done = ev->done;
                        s->total = ev->total;
                        pg.rate = ev->rate;
                        pg.eta_usec = ev->eta_usec;
                        break;
                case PROGRESS_END:
                        s->state = STEP_DONE;
                        s->done = s->total;
                        s->elapsed_usec = ev->elapsed_usec;
                        ui_log_line(t, "done in %.1f s: %s", (double) ev->elapsed_usec / 1e6, ev->description);
                        break;
                case PROGRESS_FAILED:
                        s->state = STEP_FAILED;
                        ui_log_line(t, "FAILED: %s: %s", ev->description, ev->message ?: "");
                        break;
                default:
                        break;
                }
        }
        while ((k = ui_key_poll(t)).ch != (wint_t) UI_KEY_NONE) {
                if (k.is_char && (k.ch == 'l' || k.ch == 'L'))
                        pg.show_log = !pg.show_log;
                else if (!k.is_char && k.ch == KEY_F(1))
                        ui_message(t, _("Help"), _(t->help), _("Enter: close"));
                redraw = true;
        }
        if (redraw || now_usec() - pg.last_draw_usec >= 100000)
                draw(t);
}

void ui_progress_set_plan(const Plan *p) {
        pg.plan = p;
}
