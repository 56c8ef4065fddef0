/* check.h — a minimal assertion helper for the unit test binaries.
 * Each binary prints one "ok"/"FAIL" line per check and exits non-zero if
 * any check failed; tests/run.sh counts the binaries. */
#ifndef ASR_CHECK_H
#define ASR_CHECK_H
#include <stdio.h>

static int check_failures;

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (cond) {                                                            \
            printf("ok   %s:%d ", __FILE__, __LINE__);                         \
        } else {                                                               \
            check_failures++;                                                  \
            printf("FAIL %s:%d (%s) ", __FILE__, __LINE__, #cond);             \
        }                                                                      \
        printf(__VA_ARGS__);                                                   \
        printf("\n");                                                          \
    } while (0)

#define CHECK_DONE() (check_failures ? 1 : 0)
#endif
