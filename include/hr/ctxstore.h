/* ctxstore.h -- the Redis side of a request: user context, recent history,
 * event writes.
 *
 * Each HTTP worker thread owns one connection (hr_ctxstore_thread()), so no
 * lock is taken on the hot path; the connection is freed when its thread
 * exits. A read is ONE pipelined round trip (HGETALL of the context hash and
 * LRANGE of the history); a write of a batch of events is one Lua script
 * for the whole batch (EVALSHA once Redis has it, its text otherwise; key
 * types and seen event_ids
 * checked first, then XADD, LPUSH+LTRIM and HSET, idempotency markers last),
 * so a duplicate event_id writes nothing and a batch is applied as a whole
 * or not at all. Failures are sticky per connection: the connection is
 * dropped and re-dialled after an exponential backoff (redis.backoff_min_ms
 * .. backoff_max_ms; at once when another thread has reconnected, and at
 * once with one retry when a working connection was closed by the peer,
 * not timed out, and the call is safe to repeat); until then calls fail at
 * once with HR_EREDIS, which keeps a Redis outage from stalling requests.
 * After a failure a re-dial counts as reconnected (backoff reset, other
 * threads woken) only once Redis answers a PING: a hung Redis that accepts
 * connections keeps the backoff growing.
 *
 * Key layout (prefix from config, default "hr:"): ctx:{u} hash, hist:{u}
 * list newest first of "<item_id>\t<ts>" entries (a bare item id is read
 * as an item of unknown time), events stream, evid:<event_id> string; the
 * experiments' counters (experiments.h). An event whose exp_kind is set
 * also adds, in the same script, one to <variant>:click_events (or
 * :conversion_events), its user to the variant's clickers (converters)
 * set and, the first time for its recommendation_id (a marker kept
 * experiments_dedupe_ttl_s), one to <variant>:clicks (or :conversions). */
#ifndef HR_CTXSTORE_H
#define HR_CTXSTORE_H

#include <stddef.h>

#include "hr/config.h"
#include "hr/err.h"

#define HR_CTX_FIELDS 4 /* tz, location, mood, device */
extern const char *const hr_ctx_field_names[HR_CTX_FIELDS];

typedef struct hr_ctxstore hr_ctxstore_t;

/** What Redis knows about a user. Strings live in the struct's own
 *  storage, which a later read into the same struct reuses (grown when
 *  short, never shrunk): a thread that keeps one struct reads users
 *  without allocating. Zero-initialise; hr_user_state_destroy frees. */
typedef struct {
  char *ctx[HR_CTX_FIELDS];  /* indexed like hr_ctx_field_names; NULL = unset */
  char **hist;               /* recent item ids, newest first */
  long long *hist_ts;        /* their event times (unix s), -1 unknown */
  size_t n_hist;
  char *_buf;                /* storage of the strings */
  size_t _buf_cap, _hist_cap;
} hr_user_state_t;

/** One validated event to store (all strings borrowed from the caller). */
typedef struct {
  const char *user_id;
  const char *item_id;        /* NULL for type "context" */
  const char *type;
  const char *event_id;       /* NULL: no idempotency key */
  const char *recommendation_id;
  const char *ctx[HR_CTX_FIELDS]; /* NULL = not given */
  int has_value;
  double value;
  long long ts;               /* unix seconds, already defaulted */
  /* attribution to an experiment's variant (experiments.h): 0 none,
   * HR_EXP_CLICK or HR_EXP_CONVERSION, with the names from the
   * recommendation_id */
  int exp_kind;
  const char *exp_name, *exp_variant;
} hr_event_t;

#define HR_EXP_CLICK 1
#define HR_EXP_CONVERSION 2

/** What to add to one variant's counters (hr_ctxstore_exp_add). */
typedef struct {
  const char *experiment, *variant;
  unsigned long long impressions;
  const char *const *ids;     /* user or session ids served */
  size_t n_ids;
} hr_exp_add_t;

/** One variant's totals in Redis. */
typedef struct {
  unsigned long long users, users_clicked, users_converted, impressions,
      clicks, click_events, conversions, conversion_events;
} hr_exp_totals_t;

/* ----------------------------------------------------------- lifecycle */

/** Set the options every thread's connection uses. Call once at start,
 *  before any worker thread runs; `cfg` is copied. */
void hr_ctxstore_configure(const hr_config_t *cfg);

/** The calling thread's store, created on first use (it does not connect
 *  until needed). Never NULL except on OOM. Not to be shared across
 *  threads. Freed automatically when the thread exits. */
hr_ctxstore_t *hr_ctxstore_thread(void);

/** A store owned by the caller (tests, the trainer's reader). */
hr_ctxstore_t *hr_ctxstore_new(const hr_config_t *cfg);
void hr_ctxstore_free(hr_ctxstore_t *s);

/* ---------------------------------------------------------- operations */

/** Read user `user_id`'s context hash and at most `max_hist` recent items in
 *  one round trip into `out` (zeroed or used before: its storage is
 *  reused; what it held is replaced, and is left empty on an error).
 *  Release it with hr_user_state_destroy when done with it. Returns 0,
 *  HR_EREDIS (unreachable, timed out, or in backoff) or HR_ENOMEM. */
int hr_ctxstore_read_user(hr_ctxstore_t *s, const char *user_id,
                          size_t max_hist, hr_user_state_t *out,
                          hr_error_t *err);

void hr_user_state_destroy(hr_user_state_t *st);

#define HR_EV_WRITTEN 0
#define HR_EV_DUPLICATE 1  /* its event_id had been seen: nothing written */
#define HR_EV_ATTRIBUTED 2 /* written, and counted to its variant */

/** Write `n` events in one script call; status[i] is set to one of HR_EV_*
 *  for each event. Returns 0;
 *  HR_EREDIS when Redis is unreachable or cannot take writes for now (OOM,
 *  READONLY, LOADING...): nothing acknowledged, retry later; HR_EINTERNAL
 *  when Redis refused the batch (e.g. a key of the wrong type): nothing
 *  written; HR_EINVAL / HR_ENOMEM. */
int hr_ctxstore_write_events(hr_ctxstore_t *s, const hr_event_t *ev, size_t n,
                             int *status, hr_error_t *err);

/** Add impressions and served ids to n variants' counters in one script
 *  that writes all of it or nothing (key types are checked first). The
 *  batch's `token` (unique per batch, at most 64 bytes) is remembered for a
 *  day: sending the same batch again after an error whose outcome is
 *  unknown (a lost reply) adds nothing. Returns 0, HR_EREDIS (unreachable,
 *  or cannot write now), HR_EINTERNAL (a key of the wrong type; nothing
 *  was added) or HR_ENOMEM. */
int hr_ctxstore_exp_add(hr_ctxstore_t *s, const char *token,
                        const hr_exp_add_t *add, size_t n, hr_error_t *err);

/** 1 when the batch with this token was applied (its marker exists), 0
 *  when not, -1 on an error (err set: HR_EREDIS). */
int hr_ctxstore_exp_applied(hr_ctxstore_t *s, const char *token,
                            hr_error_t *err);

/** Read the totals of an experiment's n variants in one round trip
 *  (HGETALL, SCARD of the users, clickers and converters sets). Returns 0,
 *  HR_EREDIS or HR_EINTERNAL (a key of the wrong type or a counter that is
 *  not a number). */
int hr_ctxstore_exp_read(hr_ctxstore_t *s, const char *experiment,
                         const char *const *variants, size_t n,
                         hr_exp_totals_t *out, hr_error_t *err);

/** PING; 0 when Redis answers. Respects the backoff like other calls. */
int hr_ctxstore_ping(hr_ctxstore_t *s);

/** Count of failed round trips in this process (all threads). */
unsigned long hr_ctxstore_error_count(void);
/** 1 when the last PING (/readyz, /health/redis, /metrics) was answered,
 *  0 after it or a later round trip failed. */
int hr_ctxstore_up(void);

/* ------------------------------------------------------- hidden items */
/* <prefix>items:{hidden} is the set of hidden item ids, and
 * <prefix>items:{hidden}:version a counter moved by every change, which
 * replicas read to know when to read the set again. */

/** Hide (hidden 1) or show an item: one script that changes the set and
 *  moves the version when the item's state changed (*changed 1), nothing
 *  when it was so already (0). HR_ECONFLICT when items.max_hidden items
 *  are hidden already; HR_EREDIS; HR_EINTERNAL. */
int hr_ctxstore_hidden_set(hr_ctxstore_t *s, const char *item_id, int hidden,
                           int *changed, hr_error_t *err);

/** The hidden set's version (0 when it was never changed). */
int hr_ctxstore_hidden_version(hr_ctxstore_t *s, long long *version,
                               hr_error_t *err);

/** The version and at most `max` of the hidden ids, read together (one
 *  MULTI/EXEC). *ids is the caller's: hr_ctxstore_free_ids. */
int hr_ctxstore_hidden_list(hr_ctxstore_t *s, size_t max, long long *version,
                            char ***ids, size_t *n, hr_error_t *err);
void hr_ctxstore_free_ids(char **ids, size_t n);

/* ------------------------------------------------------ stream reading */

/** Called with each stream entry's item_id and its arrival time (the
 *  entry id's milliseconds); non-zero stops the read with that code. */
typedef int (*hr_stream_item_fn)(void *arg, const char *item_id,
                                 long long t_ms);

/** Read at most `count` entries of the event stream after the entry id in
 *  `after` ("0-0", "<ms>-0", ...), calling fn on those with an item; the
 *  last id read is written back to `after`. *n_read counts the entries
 *  (fewer than count: the end was reached). */
int hr_ctxstore_stream_items(hr_ctxstore_t *s, char *after, size_t after_len,
                             size_t count, hr_stream_item_fn fn, void *arg,
                             size_t *n_read, hr_error_t *err);

/** Build "<prefix><kind>:{<user>}" into buf; returns 0 or HR_EINVAL. */
int hr_ctxstore_user_key(const char *prefix, const char *kind,
                         const char *user_id, char *buf, size_t len);

#endif
