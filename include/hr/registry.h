/* registry.h -- model slots and the snapshots requests score with.
 *
 * Each configured slot (models_dir/<slot>/) serves its newest valid version.
 * hr_registry_scan() (blocking: directory listing, file reads, checksums)
 * runs at start and later on a loader thread, never on a request thread; it
 * loads a newer version completely, validates it, and publishes it by
 * swapping the slot's snapshot pointer. Requests take a reference with
 * hr_registry_acquire() and drop it with hr_snapshot_release(); the last
 * release of a replaced snapshot retires it, and the control thread frees
 * it (hr_registry_collect), never a request thread. A version that fails to
 * load is refused, logged with its reason, counted, and not tried again
 * until its files change (names, sizes, modification times).
 * acquire/release are thread-safe and O(1) (a short per-slot mutex).
 * A rollback pins a slot to an older version until unpinned. */
#ifndef HR_REGISTRY_H
#define HR_REGISTRY_H

#include <stdatomic.h>

#include <jansson.h>

#include "hr/config.h"
#include "hr/model.h"

typedef struct hr_registry hr_registry_t;

/* Something a snapshot carries for another module (the pipeline's user
 * vector cache), freed with it through its own function. */
typedef struct hr_snapshot_aux {
  void (*free)(struct hr_snapshot_aux *a);
} hr_snapshot_aux_t;

typedef struct hr_snapshot {
  hr_model_t *model;          /* owned by the snapshot */
  _Atomic(hr_snapshot_aux_t *) aux; /* NULL, or set once (compare and swap)
                                       and freed with the snapshot */
  char loaded_at[32];         /* RFC 3339 UTC */
  char path[PATH_MAX];
  int _refs;                  /* guarded by the slot's mutex */
  struct hr_snapshot *_next;  /* in the registry's retired list */
} hr_snapshot_t;

/** A registry for cfg->slots under cfg->models_dir. Loads nothing yet. */
hr_registry_t *hr_registry_new(const hr_config_t *cfg);
/** Free the registry and its snapshots. No snapshot may still be held. */
void hr_registry_free(hr_registry_t *r);

/** Look for newer versions in every slot and publish the newest valid one.
 *  Returns the number of slots whose snapshot changed. Thread-safe:
 *  scans, rollbacks and reloads are serialised inside; blocks for as long
 *  as a load takes. */
int hr_registry_scan(hr_registry_t *r);

/** Current snapshot of slot `i` (0 = the default slot) with a reference
 *  taken, or NULL if nothing is loaded. Release with hr_snapshot_release. */
hr_snapshot_t *hr_registry_acquire(hr_registry_t *r, int slot);
/** Drop a reference. The last one of a replaced snapshot retires it:
 *  it is freed by the next hr_registry_collect (at once, on the calling
 *  thread, when no hr_registry_on_retire callback is set). */
void hr_snapshot_release(hr_registry_t *r, int slot, hr_snapshot_t *s);

/** Call fn(arg) whenever a snapshot is retired, from the thread that
 *  retired it (a request thread): fn must be quick and thread-safe (the
 *  server wakes its control loop, which calls hr_registry_collect). Set
 *  before requests run. */
void hr_registry_on_retire(hr_registry_t *r, void (*fn)(void *), void *arg);
/** Free what a snapshot carries in `aux` (for a snapshot the caller made
 *  itself; the registry's are freed with their snapshot). */
void hr_snapshot_clear_aux(hr_snapshot_t *s);
/** Free the retired snapshots (their models, unmapped); returns how many.
 *  Thread-safe. hr_registry_scan and hr_registry_free call it too. */
int hr_registry_collect(hr_registry_t *r);

int hr_registry_n_slots(const hr_registry_t *r);
const char *hr_registry_slot_name(const hr_registry_t *r, int slot);
/** Versions refused so far (all slots). */
unsigned long hr_registry_refused_count(const hr_registry_t *r);
/** Of which refused by the quality gate: a version whose report.json
 *  shows a validation NDCG@10 more than models_gate_max_drop_pct below
 *  the serving version's on the same holdout definition, or with fewer
 *  items or users than models_gate_min_count_pct of its. Not retried until
 *  its files change; an admin rollback naming it, or fit --force, passes
 *  it. */
unsigned long hr_registry_gated_count(const hr_registry_t *r);

/** The index of the slot called `name`, or -1. */
int hr_registry_find(const hr_registry_t *r, const char *name);
/** Serve `version` of the slot (0: the newest valid version older than
 *  the serving one, trying older versions newest first and passing over
 *  those that get refused; any other version on disk, older or newer, may
 *  be named) and pin the slot to it: scans leave it alone until
 *  hr_registry_reload. Loads and validates on the calling thread (an admin
 *  job), serialised with the scanner. *from / *to: the versions before and
 *  after. HR_ENOTFOUND (no such slot or version directory), HR_ECONFLICT
 *  (nothing older, the version already serves, or it is or gets refused),
 *  HR_ENOMEM. */
int hr_registry_rollback(hr_registry_t *r, int slot, uint64_t version,
                         uint64_t *from, uint64_t *to, hr_error_t *err);
/** Clear every slot's pin and scan, in one step (no rollback or scan in
 *  between): returns how many slots were pinned, *changed how many now
 *  serve another version. */
int hr_registry_reload(hr_registry_t *r, int *changed);
/** Rollbacks done so far (all slots). */
unsigned long hr_registry_rollbacks(const hr_registry_t *r);

/** JSON for GET /models (new reference); "refused" lists the versions
 *  still refused (not retried since), each once with its latest reason. */
json_t *hr_registry_describe(hr_registry_t *r);

#endif
