/* 00_fixture.c -- build (or find cached) the trained model the other
 * integration tests serve. Runs first (files sort by name) with a generous
 * timeout, so that later tests with short timeouts only copy it. */
#include "lib/env.h"

HR_TEST_T(fixture_model_builds, 240) {
  hrt_fixture_t f;
  hrt_strv_t users = {0}, items = {0};

  ASSERT_EQ(hrt_fixture_get(&f), 0);
  ASSERT_GT(f.version, 0);
  /* The generated data must have an active user with a real history: the
   * recommend and event tests pick their "known user" this way. */
  ASSERT_EQ(hrt_fixture_top_users(&f, 1, &users), 0);
  ASSERT_EQ(users.n, 1);
  ASSERT_EQ(hrt_fixture_user_items(&f, users.v[0], &items), 0);
  ASSERT_GE(items.n, 5);
  ASSERT_LT(items.n, HRT_FIXTURE_ITEMS - 20);
  hrt_strv_free(&users);
  hrt_strv_free(&items);
  return 0;
}
