/* experiments.h -- experiments: sticky assignment of users to variants,
 * the report's statistics, and the impression counters.
 *
 * A user (or, for anonymous requests, a session id) is assigned by a
 * deterministic hash of (salt, id) into the variants' integer weights: the
 * same id gets the same variant on every replica, after restarts and on
 * any build, since the hash is fixed here and pinned by a unit test
 * (changing it would reshuffle every running experiment). Changing the
 * salt gives an independent assignment. Assignment and the statistics
 * are thread-safe and keep no state; the counters are described below. */
#ifndef HR_EXPERIMENTS_H
#define HR_EXPERIMENTS_H

#include <stddef.h>
#include <stdint.h>

#include "hr/config.h"
#include "hr/err.h"

/** The 64-bit hash of salt and id (FNV-1a over salt, a 0 byte and id,
 *  then the splitmix64 finaliser). */
uint64_t hr_exp_hash(const char *salt, const char *id, size_t id_len);

/** The variant (0..n-1) of id among n variants with these weights (each
 *  >= 0, sum > 0): the hash is mapped onto [0, sum of weights) and the
 *  variant owning that bucket is returned. -1 when the weights are empty
 *  or sum to 0. */
int hr_exp_assign(const char *salt, const char *id, size_t id_len,
                  const int *weights, int n);

/* ------------------------------------------------------------ statistics */

/** The 95 % Wilson score interval of k successes in n > 0 trials. */
void hr_exp_wilson(uint64_t k, uint64_t n, double *lo, double *hi);

/** The pooled two-proportion z-test of k2/n2 against k1/n1: z (positive
 *  when the second is higher) and its two-sided p-value. Returns 0, or -1
 *  when the test is undefined (a side with no trials, or a pooled rate of
 *  0 or 1). */
int hr_exp_ztest(uint64_t k1, uint64_t n1, uint64_t k2, uint64_t n2,
                 double *z, double *p);

/** P(X >= x) for X chi-square distributed with df >= 1 degrees of freedom
 *  (the upper regularised incomplete gamma function Q(df/2, x/2)). */
double hr_exp_chi2_sf(double x, int df);

/* --------------------------------------------------------------- counting
 *
 * Impressions and assigned users are counted in this process and added to
 * Redis in batches (every experiments_flush_ms, when the batch grows large,
 * on hr_exp_counts_flush and at stop): one script that applies a batch
 * whole or not at all (hr_ctxstore_exp_add), so every replica adds to the
 * same totals without a Redis round trip per /recommend. A batch that
 * fails is kept, with its token, and sent again before anything newer
 * (unless Redis holds its token: its reply was lost after it was applied),
 * so it is counted exactly once; after a
 * failure the next attempt waits experiments_flush_ms. Keys, with the
 * configured prefix and the experiment's name as the hash tag:
 *   exp:{<name>}                hash: <variant>:impressions, :clicks,
 *                                     :click_events, :conversions,
 *                                     :conversion_events
 *   exp:{<name>}:users:<variant> set of the user (or session) ids served
 *   exp:{<name>}:clickers:<variant>, :converters:<variant>  sets of the
 *                                users with an attributed click (purchase)
 *   exp:{<name>}:c:<rec id>      marker: this recommendation was clicked
 *   exp:{<name>}:v:<rec id>      marker: it led to a conversion
 *   exp:batch:<token>            a batch already applied (one day)
 * Clicks and conversions are written with the events (ctxstore.h). */

/** Start the flusher thread (a no-op without experiments). `cfg` is
 *  copied. Returns 0 or HR_ENOMEM. */
int hr_exp_counts_start(const hr_config_t *cfg);

/** Flush what is pending and stop the thread. Safe when not started. */
void hr_exp_counts_stop(void);

/** One impression of variant v of experiment x for id (the user or session
 *  id). Thread-safe, no I/O. Ids beyond the batch's cap while Redis is
 *  unreachable are dropped and counted (hr_exp_counts_dropped). */
void hr_exp_count_impression(int x, int v, const char *id, size_t id_len);

/** Write what this process has pending now, on the caller's thread.
 *  Returns 0 or HR_EREDIS / HR_ENOMEM (the batch is kept). */
int hr_exp_counts_flush(hr_error_t *err);

/** User ids dropped because the batch was full (Redis unreachable). */
unsigned long hr_exp_counts_dropped(void);

/** The parts of a recommendation id "r1-<hex>.<experiment>.<variant>":
 *  the indices of a configured experiment and variant in *x and *v.
 *  Returns 1 when the id names them and is not a forced (".qa") one, else
 *  0. */
int hr_exp_parse_rid(const hr_config_t *cfg, const char *rid, int *x, int *v);

#endif
