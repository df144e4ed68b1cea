/* fuzz_config.c -- the config loader: a JSON file, HYPERREC_* variables.
 *
 * Input: one selector byte, then the bytes. Even: the bytes are a config
 * file (hr_config_load_buffer). Odd: they are environment lines separated
 * by newlines, each given the HYPERREC_ prefix (hr_config_load_env). Either
 * way hr_config_validate follows. A config that passes must keep the
 * documented bounds; any refusal must name an error code. */
#include "fuzz.h"

#include <string.h>

#include "hr/config.h"

#define MAX_ENV 64

static void check(const hr_config_t *c) {
  FUZZ_EXPECT(c->recommend.default_k >= 1 &&
                  c->recommend.default_k <= c->recommend.max_k,
              "default_k %d max_k %d", c->recommend.default_k,
              c->recommend.max_k);
  FUZZ_EXPECT(c->redis.backoff_min_ms <= c->redis.backoff_max_ms,
              "backoff %d > %d", c->redis.backoff_min_ms,
              c->redis.backoff_max_ms);
  FUZZ_EXPECT(c->http.max_body_bytes > 0, "max_body_bytes %ld",
              c->http.max_body_bytes);
  FUZZ_EXPECT(c->http.max_connections >= 1 &&
                  c->http.max_connections_per_ip >= 1,
              "connection limits %d %d", c->http.max_connections,
              c->http.max_connections_per_ip);
  FUZZ_EXPECT(c->http.n_cors_origins >= 0 &&
                  c->http.n_cors_origins <= HR_CONFIG_MAX_LIST &&
                  c->n_slots >= 1 && c->n_slots <= HR_CONFIG_MAX_LIST &&
                  c->n_pins >= 0 && c->n_pins <= HR_CONFIG_MAX_LIST,
              "list counts %d %d %d", c->http.n_cors_origins, c->n_slots,
              c->n_pins);
  FUZZ_EXPECT(c->n_experiments >= 0 && c->n_experiments <= HR_EXP_MAX,
              "%d experiments", c->n_experiments);
  for (int i = 0; i < c->n_experiments; i++)
    FUZZ_EXPECT(c->experiments[i].n_variants >= 1 &&
                    c->experiments[i].n_variants <= HR_EXP_MAX_VARIANTS,
                "%d variants", c->experiments[i].n_variants);
  FUZZ_EXPECT(memchr(c->listen_host, 0, sizeof(c->listen_host)) &&
                  memchr(c->redis.key_prefix, 0, sizeof(c->redis.key_prefix)) &&
                  memchr(c->admin.token, 0, sizeof(c->admin.token)),
              "a string is not terminated");
}

HR_FUZZ_TARGET(config) {
  hr_config_t c;
  hr_error_t err;
  int rc;

  if (size < 1)
    return 0;
  hr_config_defaults(&c);
  memset(&err, 0, sizeof(err));
  if ((data[0] & 1) == 0) {
    rc = hr_config_load_buffer(&c, (const char *)data + 1, size - 1, "fuzz",
                               &err);
  } else {
    /* "HYPERREC_" + line, NUL-terminated, for at most MAX_ENV lines. */
    char *buf = malloc((size - 1) + MAX_ENV * 10 + 1);
    char *env[MAX_ENV + 1];
    size_t n = 0, w = 0;
    const uint8_t *p = data + 1, *end = data + size;
    if (buf == NULL)
      return 0;
    while (p < end && n < MAX_ENV) {
      const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
      size_t len = (size_t)((nl ? nl : end) - p);
      env[n++] = buf + w;
      memcpy(buf + w, "HYPERREC_", 9);
      memcpy(buf + w + 9, p, len);
      w += 9 + len;
      buf[w++] = '\0';
      p += len + (nl != NULL);
    }
    env[n] = NULL;
    rc = hr_config_load_env(&c, env, &err);
    free(buf);
  }
  if (rc == 0)
    rc = hr_config_validate(&c, &err);
  if (rc != 0) {
    FUZZ_EXPECT(rc < 0 && err.code == rc, "rc %d, err.code %d", rc, err.code);
    return 0;
  }
  hr_fuzz_accepted++;
  check(&c);
  (void)hr_config_origin_allowed(&c, "https://shop.example");
  for (int i = 0; i < c.n_slots; i++)
    (void)hr_config_pin(&c, c.slots[i]);
  return 0;
}
