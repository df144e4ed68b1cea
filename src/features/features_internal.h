/* features_internal.h -- entry points of src/features for the fuzz harnesses
 * and unit tests. Not installed. */
#ifndef HR_FEATURES_INTERNAL_H
#define HR_FEATURES_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* Parse `len` bytes as a TZif file and write the UTC offset at each of the
 * n times ts[] into out[]. 0, or HR_EFORMAT when the bytes are not a valid
 * TZif file (nothing is cached either way). */
int hr__tz_parse_offsets(const uint8_t *buf, size_t len, const long long *ts,
                         size_t n, int *out);

#endif
