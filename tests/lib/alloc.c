/* alloc.c -- the --wrap'ed allocators of alloc.h. */
#include "alloc.h"

#include <stddef.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t align, size_t n);
int __real_posix_memalign(void **p, size_t align, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);

void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
void *__wrap_aligned_alloc(size_t align, size_t n);
int __wrap_posix_memalign(void **p, size_t align, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);

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

#define SEEN() (count += (unsigned long)counting)

void *__wrap_malloc(size_t n) {
  SEEN();
  return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size) {
  SEEN();
  return __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n) {
  SEEN();
  return __real_realloc(p, n);
}

void *__wrap_aligned_alloc(size_t align, size_t n) {
  SEEN();
  return __real_aligned_alloc(align, n);
}

int __wrap_posix_memalign(void **p, size_t align, size_t n) {
  SEEN();
  return __real_posix_memalign(p, align, n);
}

char *__wrap_strdup(const char *s) {
  SEEN();
  return __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n) {
  SEEN();
  return __real_strndup(s, n);
}
