/* test_jsonw.c -- the HTTP layer's JSON writer (src/http/jsonw.c) gives the
 * bytes jansson's compact, order-preserving dump gives for the same
 * values: strings with every byte, reals of every magnitude, integers,
 * nesting. */
#include "test.h"

#include "../src/http/internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static char *jansson(json_t *o, int digits) {
  char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER |
                              JSON_REAL_PRECISION(digits) | JSON_ENCODE_ANY);
  json_decref(o);
  return s;
}

HR_TEST(jsonw_matches_jansson) {
  hr_jsonw_t j = {0};
  unsigned seed = 5;
  char str[300];
  json_t *o, *arr;
  char *want;

  for (int round = 0; round < 200; round++) {
    /* a string of random bytes 1..255 (jansson takes UTF-8: keep the high
     * bytes to valid two-byte sequences) */
    size_t n = 0;
    while (n < 200) {
      unsigned c = (seed = seed * 1103515245u + 12345u) >> 16 & 255;
      if (c == 0)
        continue;
      if (c >= 0x80) {
        str[n++] = (char)(0xC2 + (c & 1));
        str[n++] = (char)(0x80 | (c & 0x3F));
      } else {
        str[n++] = (char)c;
      }
    }
    str[n] = '\0';
    seed = seed * 1103515245u + 12345u;
    double v = ldexp((double)(int)seed / 7.0, (int)((seed >> 3) % 140) - 70);
    float f = (float)v;
    long long i = (long long)(seed * 2654435761u) - 2000000000LL;

    hr_jsonw_reset(&j);
    hr_jsonw_open(&j, NULL, '{');
    hr_jsonw_str(&j, "s", str);
    hr_jsonw_str(&j, "none", NULL);
    hr_jsonw_real(&j, "d", v, 17);
    hr_jsonw_real(&j, "f", (double)f, 7);
    hr_jsonw_int(&j, "i", i);
    hr_jsonw_open(&j, "a", '[');
    hr_jsonw_bool(&j, NULL, round & 1);
    hr_jsonw_open(&j, NULL, '{');
    hr_jsonw_real(&j, "zero", round & 2 ? 0.0 : -0.0, 7);
    hr_jsonw_real(&j, "whole", (double)(round * 1000), 7);
    hr_jsonw_close(&j, '}');
    hr_jsonw_null(&j, NULL);
    hr_jsonw_close(&j, ']');
    hr_jsonw_close(&j, '}');
    ASSERT(!j.oom);

    arr = json_array();
    json_array_append_new(arr, json_boolean(round & 1));
    json_array_append_new(arr, json_pack("{s:f,s:f}", "zero",
                                         round & 2 ? 0.0 : -0.0, "whole",
                                         (double)(round * 1000)));
    json_array_append_new(arr, json_null());
    o = json_object();
    json_object_set_new(o, "s", json_string(str));
    json_object_set_new(o, "none", json_null());
    /* two precisions: dump the reals of each part with its own */
    want = jansson(o, 17);
    ASSERT_NOT_NULL(want);
    {
      char *d = jansson(json_real(v), 17), *ff = jansson(json_real(f), 7),
           *a = jansson(arr, 7), buf[1024];
      ASSERT(d && ff && a);
      want[strlen(want) - 1] = '\0'; /* drop '}' */
      snprintf(buf, sizeof(buf), "%s,\"d\":%s,\"f\":%s,\"i\":%lld,\"a\":%s}",
               want, d, ff, i, a);
      ASSERT_MSG(strcmp(j.buf, buf) == 0, "\n got %s\nwant %s", j.buf, buf);
      free(d);
      free(ff);
      free(a);
    }
    free(want);
  }
  /* a number JSON cannot hold is null, not "nan" */
  hr_jsonw_reset(&j);
  hr_jsonw_real(&j, NULL, NAN, 7);
  hr_jsonw_real(&j, NULL, INFINITY, 7);
  ASSERT_STR_EQ(j.buf, "null,null");
  hr_jsonw_free(&j);
  return 0;
}
