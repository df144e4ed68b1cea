/* test_features.c -- time zones and context resolution. */
#include "test.h"

#include "hr/features.h"

HR_TEST(features_tz_offsets) {
  int off;
  /* 2024-07-01T12:00:00Z: Paris is UTC+2 (summer), New York UTC-4. */
  ASSERT_EQ(hr_tz_offset("Europe/Paris", 1719835200LL, &off), 0);
  ASSERT_EQ(off, 7200);
  ASSERT_EQ(hr_tz_offset("America/New_York", 1719835200LL, &off), 0);
  ASSERT_EQ(off, -4 * 3600);
  /* 2024-01-15T12:00:00Z: winter. */
  ASSERT_EQ(hr_tz_offset("Europe/Paris", 1705320000LL, &off), 0);
  ASSERT_EQ(off, 3600);
  ASSERT_EQ(hr_tz_offset("UTC+05:30", 0, &off), 0);
  ASSERT_EQ(off, 5 * 3600 + 1800);
  ASSERT_EQ(hr_tz_offset("UTC-03", 0, &off), 0);
  ASSERT_EQ(off, -3 * 3600);
  ASSERT_EQ(hr_tz_offset("UTC", 0, &off), 0);
  ASSERT_EQ(off, 0);
  ASSERT_EQ(hr_tz_offset("Mars/Olympus", 0, &off), HR_EINVAL);
  ASSERT_EQ(hr_tz_offset("../../etc/passwd", 0, &off), HR_EINVAL);
  ASSERT_EQ(hr_tz_offset("/etc/passwd", 0, &off), HR_EINVAL);
  ASSERT_EQ(hr_tz_offset("UTC+99:00", 0, &off), HR_EINVAL);
  ASSERT_EQ(hr_tz_offset("UTC++5", 0, &off), HR_EINVAL);
  ASSERT_EQ(hr_tz_offset("UTC+ 5", 0, &off), HR_EINVAL);
  ASSERT_EQ(hr_tz_offset("UTC+05:3", 0, &off), HR_EINVAL);
  ASSERT_EQ(hr_tz_offset("UTC+05:30x", 0, &off), HR_EINVAL);
  /* Many lookups of many zones: the cache answers the same as a cold load. */
  for (int round = 0; round < 2; round++) {
    ASSERT_EQ(hr_tz_offset("Asia/Kolkata", 1719835200LL, &off), 0);
    ASSERT_EQ(off, 5 * 3600 + 1800);
    ASSERT_EQ(hr_tz_offset("Australia/Sydney", 1719835200LL, &off), 0);
    ASSERT_EQ(off, 10 * 3600);
  }
  ASSERT(!hr_tz_valid(""));
  hr_tz_cache_clear();
  return 0;
}

HR_TEST(features_resolve_sources) {
  hr_user_state_t st = {0};
  hr_context_t c;
  const char *req[HR_CTX_FIELDS] = {NULL, "work", NULL, NULL};
  char tz[] = "Europe/Paris", loc[] = "home", mood[] = "sad";

  st.ctx[0] = tz;
  st.ctx[1] = loc;
  st.ctx[2] = mood;
  /* 2024-07-06T21:30:00Z is Saturday 23:30 in Paris. */
  hr_features_resolve(req, 1720301400LL, &st, &c);
  ASSERT_EQ(c.ts_src, HR_SRC_REQUEST);
  ASSERT_STR_EQ(c.val[0], "Europe/Paris");
  ASSERT_EQ(c.src[0], HR_SRC_REDIS);
  ASSERT_STR_EQ(c.val[1], "work");
  ASSERT_EQ(c.src[1], HR_SRC_REQUEST);
  ASSERT_STR_EQ(c.val[2], "sad");
  ASSERT_EQ(c.src[2], HR_SRC_REDIS);
  ASSERT(c.val[3] == NULL);
  ASSERT_EQ(c.src[3], HR_SRC_NONE);
  ASSERT_EQ(c.hour, 23);
  ASSERT_EQ(c.weekday, 5);
  ASSERT_EQ(c.weekend, 1);
  /* No Redis, no request: UTC default, server clock. */
  hr_features_resolve(NULL, -1, NULL, &c);
  ASSERT_EQ(c.ts_src, HR_SRC_NOW);
  ASSERT_STR_EQ(c.val[0], "UTC");
  ASSERT_EQ(c.src[0], HR_SRC_DEFAULT);
  ASSERT_STR_EQ(hr_ctx_source_name(HR_SRC_REDIS), "redis");
  /* A corrupt tz in Redis falls back to UTC. */
  char badtz[] = "Nowhere/Atlantis";
  st.ctx[0] = badtz;
  hr_features_resolve(NULL, 0, &st, &c);
  ASSERT_STR_EQ(c.val[0], "UTC");
  ASSERT_EQ(c.src[0], HR_SRC_DEFAULT);
  ASSERT_EQ(c.weekday, 3); /* 1970-01-01 was a Thursday */
  hr_tz_cache_clear();
  return 0;
}
