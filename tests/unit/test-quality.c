/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Password quality with and without the cracklib dictionary. libpwquality is pointed at a
 * dictionary that does not exist (its "dictpath" setting), as on a machine without
 * cracklib-runtime: a strong password must pass, with one warning logged and a note for the front
 * end; a short or too simple one must still be refused for its own reason. With the system's
 * dictionary (scripts/deps installs cracklib-runtime), a dictionary word is refused as before and
 * there is no note. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "error.h"
#include "log.h"
#include "quality.h"
#include "tests.h"

static unsigned n_warnings;
static char last_warning[4096];

static void capture(int level, const char *line, void *userdata) {
        (void) userdata;
        if (level <= LOG_WARNING) {
                n_warnings++;
                snprintf(last_warning, sizeof(last_warning), "%s", line);
        }
}

int main(void) {
        const char *strong = "Kestrel-harbour 9 lantern";
        char dir[] = "/tmp/test-quality.XXXXXX", setting[128];
        int r;

        log_set_sink(capture, NULL);
        ASSERT_TRUE(mkdtemp(dir));
        snprintf(setting, sizeof(setting), "dictpath=%s/cracklib_dict", dir);
        const char *const missing[] = { setting, NULL };

        /* Without the dictionary: the strong password passes, and the front end is told why it was
         * not looked up. */
        r = password_quality_check_with(strong, "alice", missing);
        if (r < 0)
                FAIL("a strong password is refused without the dictionary: %s", error_message());
        ASSERT_TRUE(r > 0);
        ASSERT_CONTAINS(password_quality_note(), "dictionary (cracklib) is missing");
        ASSERT_EQ(n_warnings, 1);
        ASSERT_CONTAINS(last_warning, "The password dictionary (cracklib) is missing");
        ASSERT_CONTAINS(last_warning, dir);

        /* ...the remaining rules still apply, each with its own reason. */
        ASSERT_EQ(password_quality_check_with("abc", NULL, missing), -EPERM);
        ASSERT_CONTAINS(error_message(), "shorter than");
        ASSERT_FALSE(strstr(error_message(), "dictionary"));
        ASSERT_EQ(password_quality_check_with("kayak-kayak", NULL, missing), -EPERM);
        ASSERT_CONTAINS(error_message(), "palindrome");
        ASSERT_EQ(password_quality_check_with("alice-was-here-2024", "alice", missing), -EPERM);
        ASSERT_CONTAINS(error_message(), "user name");
        ASSERT_TRUE(password_quality_check_with("Another-strong 7 pass phrase", NULL, missing) > 0);
        ASSERT_TRUE(password_quality_note());
        /* Warned once, however often it checks (the full-screen installer checks at every key). */
        ASSERT_EQ(n_warnings, 1);

        /* With the system's dictionary: a dictionary word is refused as ever, and no note. */
        r = password_quality_check_with("elephants", NULL, NULL);
        ASSERT_EQ(r, -EPERM);
        ASSERT_CONTAINS(error_message(), "dictionary word");
        ASSERT_TRUE(password_quality_note() == NULL);
        r = password_quality_check(strong, "alice");
        if (r < 0)
                FAIL("a strong password is refused with the system's dictionary: %s", error_message());
        ASSERT_TRUE(password_quality_note() == NULL);
        ASSERT_EQ(password_quality_check("abc", NULL), -EPERM);
        ASSERT_CONTAINS(error_message(), "shorter than");

        /* The missing one again: still no dictionary, and no second warning. */
        ASSERT_TRUE(password_quality_check_with(strong, NULL, missing) > 0);
        ASSERT_TRUE(password_quality_note());
        ASSERT_EQ(n_warnings, 1);

        /* A dictionary turned off by the configuration is not "missing". */
        const char *const off[] = { setting, "dictcheck=0", NULL };
        ASSERT_TRUE(password_quality_check_with(strong, NULL, off) > 0);
        ASSERT_TRUE(password_quality_note() == NULL);

        /* A setting libpwquality does not know is an error, not a silent default. */
        const char *const bogus[] = { "no-such-setting=1", NULL };
        ASSERT_EQ(password_quality_check_with(strong, NULL, bogus), -EINVAL);
        ASSERT_CONTAINS(error_message(), "no-such-setting");

        ASSERT_OK(rmdir(dir) < 0 ? -errno : 0);
        return 0;
}
