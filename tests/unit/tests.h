/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAIL(...)                                                                  \
        do {                                                                       \
                fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                    \
                fprintf(stderr, __VA_ARGS__);                                      \
                fputc('\n', stderr);                                               \
                abort();                                                           \
        } while (0)

#define ASSERT_TRUE(x)                                                             \
        do {                                                                       \
                if (!(x))                                                          \
                        FAIL("assertion failed: %s", #x);                          \
        } while (0)
#define ASSERT_FALSE(x) ASSERT_TRUE(!(x))

#define ASSERT_OK(x)                                                               \
        do {                                                                       \
                int _r = (int) (x);                                                \
                if (_r < 0)                                                        \
                        FAIL("%s failed: %s", #x, strerror(-_r));                  \
        } while (0)

#define ASSERT_EQ(a, b)                                                            \
        do {                                                                       \
                intmax_t _a = (intmax_t) (a), _b = (intmax_t) (b);                 \
                if (_a != _b)                                                      \
                        FAIL("%s == %s: %jd != %jd", #a, #b, _a, _b);              \
        } while (0)

#define ASSERT_STREQ(a, b)                                                         \
        do {                                                                       \
                const char *_a = (a), *_b = (b);                                   \
                if (!_a || !_b || strcmp(_a, _b) != 0)                             \
                        FAIL("%s == %s: \"%s\" != \"%s\"", #a, #b, _a ?: "(null)", _b ?: "(null)"); \
        } while (0)

#define ASSERT_CONTAINS(hay, needle)                                               \
        do {                                                                       \
                const char *_h = (hay), *_n = (needle);                            \
                if (!_h || !strstr(_h, _n))                                        \
                        FAIL("\"%s\" does not contain \"%s\"", _h ?: "(null)", _n); \
        } while (0)
