/* alloc.h -- counting the project's heap allocations in a test.
 *
 * The test binary is linked with -Wl,--wrap for malloc, calloc, realloc,
 * aligned_alloc, posix_memalign, strdup and strndup: every call that the
 * project's code (src/, linked statically) makes goes through a counter
 * first. Calls made inside shared libraries (libc's own, jansson,
 * hiredis, OpenBLAS) are not seen. Counting is per thread. */
#ifndef HRT_ALLOC_H
#define HRT_ALLOC_H

/** Start counting on this thread from 0. */
void hrt_alloc_count_start(void);
/** Stop counting; returns the allocations counted since the start. */
unsigned long hrt_alloc_count_stop(void);

#endif
