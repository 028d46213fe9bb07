/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The strict JSON reader every loader of user input goes through (json-strict.h), the file reader
 * under it (read_regular_file(): FIFOs, devices and oversized files refused before reading), and
 * the per-field validators (validate.h) that options, plan files and configurations share. Each
 * refusal is checked for its sentence, which names the problem and its line and column. */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "fileio.h"
#include "json-strict.h"
#include "tests.h"
#include "validate.h"

static json_object *parse_ok(const char *text, size_t size) {
        json_object *j = NULL;

        error_clear();
        if (json_parse_strict(text, size, "the input", &j) < 0)
                FAIL("refused: %s: %s", text, error_message());
        return j;
}

#define PARSE_OK(s) parse_ok((s), sizeof(s) - 1)

static void refused(const char *text, size_t size, const char *expect) {
        json_object *j = NULL;

        error_clear();
        ASSERT_EQ(json_parse_strict(text, size, "the input", &j), -EINVAL);
        ASSERT_TRUE(j == NULL);
        ASSERT_CONTAINS(error_message(), "The input is not valid JSON: ");
        ASSERT_CONTAINS(error_message(), expect);
        printf("refused as it should be: %s\n", error_message());
}

#define REFUSED(s, expect) refused((s), sizeof(s) - 1, (expect))

static void test_accepted(void) {
        json_object *j, *v;

        j = PARSE_OK("{ \"a\": 1, \"b\": [true, false, null, -0.5e+3, \"x\\u00e9\\ud83d\\ude00\"], \"c\": {} }\n");
        ASSERT_TRUE(json_object_object_get_ex(j, "b", &v));
        ASSERT_EQ(json_object_array_length(v), 5);
        ASSERT_STREQ(json_object_get_string(json_object_array_get_idx(v, 4)), "x\xc3\xa9\xf0\x9f\x98\x80");
        json_object_put(j);

        /* Equal keys in different objects are no duplicates. */
        j = PARSE_OK("{\"a\": {\"a\": 1}, \"b\": {\"a\": 2}}");
        json_object_put(j);

        /* Escaped '/', quotes and UTF-8 as it is. */
        j = PARSE_OK("{\"path\": \"\\/var\\/tmp\\/\\\"x\\\"\", \"name\": \"Gr\xc3\xbc\xc3\x9f\"}");
        ASSERT_TRUE(json_object_object_get_ex(j, "path", &v));
        ASSERT_STREQ(json_object_get_string(v), "/var/tmp/\"x\"");
        json_object_put(j);

        /* 32 levels are allowed. */
        {
                char deep[200] = "";
                for (int i = 0; i < 32; i++)
                        strcat(deep, "[");
                for (int i = 0; i < 32; i++)
                        strcat(deep, "]");
                json_object_put(parse_ok(deep, strlen(deep)));
        }
        printf("accepted: ok\n");
}

static void test_refused(void) {
        /* The four the fuzzing pass found. */
        REFUSED("{\"target\": \"/var/tmp/a.img\", \"source\": \"x\", \"target\": \"/dev/vda\"}",
                "the key \"target\" appears twice in one object (line 1, column 45)");
        REFUSED("{\"a\": 1, \"\\u0061\": 2}", "the key \"a\" appears twice");
        REFUSED("{\"x\": {\"k\": 1,\n \"k\": 2}}", "appears twice in one object (line 2, column 2)");
        REFUSED("{\"target\": \"/var/tmp/a.img\\u0000/dev/vda\"}", "a string holds a NUL character (\\u0000)");
        REFUSED("{\"ta\\u0000rget\": \"/dev/vda\"}", "a key holds a NUL character (\\u0000)");
        REFUSED("{\"a\": 1} {\"a\": 2}", "more follows the JSON value (line 1, column 10)");
        REFUSED("{\"a\": 1}\n,", "more follows the JSON value (line 2, column 1)");
        /* A raw NUL byte: json-c would stop reading there. */
        REFUSED("{\"a\": \"x\0y\"}", "it holds a NUL byte (line 1, column 9)");
        REFUSED("{\"a\": 1}\0garbage", "it holds a NUL byte");

        /* What json-c accepts even in strict mode. */
        REFUSED("{'a': 1}", "a key in double quotes is expected");
        REFUSED("{\"a\": 'x'}", "strings must be in double quotes");
        REFUSED("{\"a\": NaN}", "a value is expected, not 'N'");
        REFUSED("{\"a\": \"x\ty\"}", "a string holds the control character 0x09 unescaped");
        REFUSED("{\"a\": 1,}", "a key in double quotes is expected");
        REFUSED("[1, 2,]", "a value is expected, not ']'");
        REFUSED("{\"a\": 01}", "a ',' or '}' is expected");
        REFUSED("{\"a\": 1.}", "a number is malformed");
        REFUSED("{\"a\": \"\\ud800\"}", "lone UTF-16 surrogate");
        REFUSED("{\"a\": \"\\udc00\"}", "lone UTF-16 surrogate");
        REFUSED("{\"a\": \"\\x41\"}", "invalid escape");
        REFUSED("{\"a\": \"\\u12\"}", "without four hex digits");
        REFUSED("{\"a\": \"\xc0\xaf\"}", "a string is not valid UTF-8");
        REFUSED("{\"a\": \"\xed\xa0\x80\"}", "a string is not valid UTF-8");
        REFUSED("{\"a\": 1", "the text ends inside an object");
        REFUSED("{\"a\": \"x", "a string is not closed");
        REFUSED("", "a value is expected, but the text ends");
        {
                char deep[200] = "";
                for (int i = 0; i < 33; i++)
                        strcat(deep, "[");
                for (int i = 0; i < 33; i++)
                        strcat(deep, "]");
                refused(deep, strlen(deep), "nest deeper than 32 levels");
        }
        printf("refused: ok\n");
}

static char *write_temp(const char *dir, const char *name, const char *text, size_t size) {
        char *path;
        int fd;

        ASSERT_TRUE(asprintf(&path, "%s/%s", dir, name) > 0);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        ASSERT_TRUE(fd >= 0);
        ASSERT_EQ(write(fd, text, size), (ssize_t) size);
        close(fd);
        return path;
}

static void test_files(void) {
        char dir[] = "/tmp/test-json.XXXXXX", *path, *big;
        json_object *j = NULL;

        ASSERT_TRUE(mkdtemp(dir));

        path = write_temp(dir, "ok.json", "{\"a\": 1}\n", 9);
        ASSERT_OK(json_read_file_strict(path, "the plan file", &j));
        ASSERT_TRUE(json_object_is_type(j, json_type_object));
        json_object_put(j);
        j = NULL;
        unlink(path);
        free(path);

        path = write_temp(dir, "dup.json", "{\"a\": 1, \"a\": 2}", 16);
        ASSERT_EQ(json_read_file_strict(path, "the plan file", &j), -EINVAL);
        ASSERT_CONTAINS(error_message(), "The plan file ");
        ASSERT_CONTAINS(error_message(), "dup.json is not valid JSON: the key \"a\" appears twice");
        unlink(path);
        free(path);

        /* Missing: a sentence, not json-c's "json_object_from_file: error opening file". */
        ASSERT_TRUE(asprintf(&path, "%s/missing.json", dir) > 0);
        ASSERT_EQ(json_read_file_strict(path, "the plan file", &j), -ENOENT);
        ASSERT_CONTAINS(error_message(), "Cannot read the plan file ");
        ASSERT_CONTAINS(error_message(), "missing.json: it does not exist.");
        free(path);

        /* A FIFO nobody writes to: refused at once, not waited on. */
        ASSERT_TRUE(asprintf(&path, "%s/fifo", dir) > 0);
        ASSERT_OK(mkfifo(path, 0600));
        ASSERT_EQ(json_read_file_strict(path, "the configuration", &j), -EINVAL);
        ASSERT_CONTAINS(error_message(), "fifo: it is a FIFO, not a regular file.");
        unlink(path);
        free(path);

        /* Endless: a character device. */
        ASSERT_EQ(json_read_file_strict("/dev/zero", "the configuration", &j), -EINVAL);
        ASSERT_STREQ(error_message(), "Cannot read the configuration /dev/zero: it is a character device, not a regular file.");
        ASSERT_EQ(json_read_file_strict(dir, "the configuration", &j), -EINVAL);
        ASSERT_CONTAINS(error_message(), "it is a directory, not a regular file.");

        /* Larger than the limit: refused by its size, whatever it holds. */
        big = calloc(1, JSON_FILE_MAX + 2);
        ASSERT_TRUE(big);
        memset(big, ' ', JSON_FILE_MAX + 1);
        big[0] = '{', big[1] = '}';
        path = write_temp(dir, "big.json", big, JSON_FILE_MAX + 1);
        ASSERT_EQ(json_read_file_strict(path, "the plan file", &j), -E2BIG);
        ASSERT_CONTAINS(error_message(), "is larger than 1024 KiB");
        unlink(path);
        free(path);
        /* Exactly the limit is fine. */
        path = write_temp(dir, "limit.json", big, JSON_FILE_MAX);
        ASSERT_OK(json_read_file_strict(path, "the plan file", &j));
        json_object_put(j);
        unlink(path);
        free(path);
        free(big);

        /* A procfs file says it is empty and still has content: read, with the cap. */
        {
                char *text = NULL;
                size_t size = 0;
                ASSERT_OK(read_regular_file("/proc/self/status", "status", 1024 * 1024, &text, &size));
                ASSERT_TRUE(size > 0);
                free(text);
                ASSERT_EQ(read_regular_file("/proc/self/status", "status", 16, &text, &size), -E2BIG);
        }

        ASSERT_OK(rmdir(dir));
        printf("files: ok\n");
}

static void test_validators(void) {
        /* The values the fuzzing pass put into plan files. */
        ASSERT_EQ(validate_locale("C.UTF-8\nLD_PRELOAD=/tmp/evil.so"), -EINVAL);
        ASSERT_CONTAINS(error_message(), "is not a locale name");
        ASSERT_OK(validate_locale("de_DE.UTF-8"));
        ASSERT_OK(validate_locale("sr_RS@latin"));
        ASSERT_EQ(validate_keymap("../../etc/shadow\nx"), -EINVAL);
        ASSERT_EQ(validate_keymap("de/../x"), -EINVAL);
        ASSERT_OK(validate_keymap("de-latin1-nodeadkeys"));
        ASSERT_EQ(validate_timezone("../../etc/passwd"), -EINVAL);
        ASSERT_EQ(validate_timezone("Europe/Berlin\n"), -EINVAL);
        ASSERT_OK(validate_timezone("America/Argentina/Buenos_Aires"));
        ASSERT_OK(validate_timezone("Etc/GMT+5"));
        ASSERT_EQ(validate_hostname("a\nb"), -EINVAL);
        ASSERT_EQ(validate_hostname("-a"), -EINVAL);
        ASSERT_OK(validate_hostname("desk-1.example.org"));

        ASSERT_EQ(validate_user_name("../alice"), -EINVAL);
        ASSERT_CONTAINS(error_message(), "cannot be a user name");
        ASSERT_EQ(validate_user_name("alice\n[Service]"), -EINVAL);
        ASSERT_EQ(validate_user_name("root"), -EINVAL);
        ASSERT_EQ(validate_user_name("Alice"), -EINVAL);
        ASSERT_EQ(validate_user_name(""), -EINVAL);
        ASSERT_OK(validate_user_name("alice"));
        ASSERT_OK(validate_user_name("_build-2"));

        ASSERT_EQ(validate_real_name("Alice:0:0"), -EINVAL);
        ASSERT_EQ(validate_real_name("Alice\nroot::0:0::/:/bin/sh"), -EINVAL);
        ASSERT_EQ(validate_real_name("Alice\tB"), -EINVAL);
        ASSERT_OK(validate_real_name("Alice Müller, Room 4"));

        ASSERT_OK(validate_partition_label("root-x86-64"));
        ASSERT_OK(validate_partition_label("123456789012345678901234567890123456"));
        ASSERT_EQ(validate_partition_label("1234567890123456789012345678901234567"), -EINVAL);
        {
                /* GPT names count UTF-16 code units, not bytes: 36 two-byte characters fit. */
                char label[128] = "";
                for (int i = 0; i < 36; i++)
                        strcat(label, "\xc3\xa4");
                ASSERT_OK(validate_partition_label(label));
                strcat(label, "\xc3\xa4");
                ASSERT_EQ(validate_partition_label(label), -EINVAL);
        }
        ASSERT_EQ(validate_partition_label("a\nb"), -EINVAL);

        ASSERT_EQ(validate_seed(""), -EINVAL);
        ASSERT_EQ(validate_seed("a\nb"), -EINVAL);
        ASSERT_OK(validate_seed("line 4, machine 17"));

        ASSERT_OK(validate_tpm2_tcti("swtpm:port=2321"));
        ASSERT_OK(validate_tpm2_tcti("device:/dev/tpmrm0"));
        ASSERT_EQ(validate_tpm2_tcti("cmd:touch /tmp/pwned"), -EINVAL);
        ASSERT_CONTAINS(error_message(), "is not a device:, swtpm: or mssim: TCTI");

        {
                PlanSettings s = { .hostname = (char *) "desk", .locale = (char *) "C.UTF-8\nX=1" };
                ASSERT_EQ(settings_validate(&s), -EINVAL);
                ASSERT_CONTAINS(error_message(), "is not a locale name");
        }
        printf("validators: ok\n");
}

int main(void) {
        test_accepted();
        test_refused();
        test_files();
        test_validators();
        printf("test-json: all checks passed\n");
        return 0;
}
