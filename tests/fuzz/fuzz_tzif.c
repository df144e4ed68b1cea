/* fuzz_tzif.c -- the TZif parser (RFC 8536) behind context time zones.
 *
 * Input: the bytes of a zone file. A file the parser accepts must give an
 * offset within +-26 hours at any time. */
#include "fuzz.h"

#include "../../src/features/features_internal.h"

HR_FUZZ_TARGET(tzif) {
  static const long long ts[] = {
      -9223372036854775807LL - 1, -2208988800LL, 0, 946684800LL,
      1767225600LL, 2147483647LL, 4102444800LL, 9223372036854775807LL};
  int off[sizeof(ts) / sizeof(ts[0])];
  size_t n = sizeof(ts) / sizeof(ts[0]);

  if (hr__tz_parse_offsets(data, size, ts, n, off) != 0)
    return 0;
  hr_fuzz_accepted++;
  for (size_t i = 0; i < n; i++)
    FUZZ_EXPECT(off[i] >= -26 * 3600 && off[i] <= 26 * 3600, "offset %d",
                off[i]);
  return 0;
}
