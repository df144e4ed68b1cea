/* alloc.c -- the --wrap'ed allocators of alloc.h. */
#include "alloc.h"

#include <stddef.h>

static _Thread_local int counting;
static _Thread_local unsigned long count;

void hrt_alloc_count_start(void) {
  count = 0;
  counting = 1;
}

unsigned long hrt_alloc_count_stop(void) {
  counting = 0;
  return count;
}

/* __wrap_NAME counts the call, then calls the real NAME (both declared
 * here: the linker supplies __real_NAME). */
#define WRAP(type, name, params, args)                                        \
  type __real_##name params;                                                  \
  type __wrap_##name params;                                                  \
  type __wrap_##name params {                                                 \
    count += (unsigned long)counting;                                         \
    return __real_##name args;                                                \
  }

WRAP(void *, malloc, (size_t n), (n))
WRAP(void *, calloc, (size_t n, size_t size), (n, size))
WRAP(void *, realloc, (void *p, size_t n), (p, n))
WRAP(void *, aligned_alloc, (size_t align, size_t n), (align, n))
WRAP(int, posix_memalign, (void **p, size_t align, size_t n), (p, align, n))
WRAP(char *, strdup, (const char *s), (s))
WRAP(char *, strndup, (const char *s, size_t n), (s, n))
