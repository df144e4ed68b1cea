/* registry.c -- slots, refcounted snapshots, version scanning. */
#include "hr/registry.h"
#include "hr/log.h"

#include <dirent.h>
#include <malloc.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define MAX_REASONS 64 /* refusals shown with their reason in /models */

typedef struct {
  uint64_t version;
  char reason[320];
} refused_t;

/* A refused version: the signature of its files when refused (not retried
 * until that changes) and when that was last looked at. */
typedef struct {
  uint64_t version, sig;
  int64_t checked_ms; /* monotonic */
  int gate;           /* by the quality gate: an admin rollback may force */
} refusal_t;

typedef struct {
  char name[64];
  char dir[PATH_MAX];
  pthread_mutex_t mu;
  hr_snapshot_t *cur;
  /* Guarded by mu: every refused version (sorted by version), and the
   * reasons of the latest MAX_REASONS in a ring. */
  refusal_t *refused_set;
  size_t n_refused_set, cap_refused_set;
  refused_t reasons[MAX_REASONS];
  int n_refused;
  uint64_t pinned;  /* guarded by mu; by a rollback, 0: none */
  uint64_t cfg_pin; /* models_pin, 0: none; fixed */
} slot_t;

struct hr_registry {
  slot_t slots[HR_CONFIG_MAX_LIST];
  int n;
  pthread_mutex_t scan_mu; /* one scanner or rollback at a time */
  atomic_ulong refused_total;
  atomic_ulong gated_total;    /* of which by the quality gate */
  atomic_ulong rollbacks_total;
  int gate_drop_pct, gate_count_pct; /* the gate's thresholds */
  /* Snapshots whose last reference is gone, waiting to be freed by
   * hr_registry_collect (off the request threads): a list through
   * hr_snapshot_t._next, and who to tell when it grows. */
  pthread_mutex_t retired_mu;
  hr_snapshot_t *retired;
  void (*on_retire)(void *);
  void *on_retire_arg;
};

hr_registry_t *hr_registry_new(const hr_config_t *cfg) {
  hr_registry_t *r = calloc(1, sizeof(*r));
  if (r == NULL)
    return NULL;
  r->n = cfg->n_slots;
  pthread_mutex_init(&r->scan_mu, NULL);
  pthread_mutex_init(&r->retired_mu, NULL);
  for (int i = 0; i < r->n; i++) {
    slot_t *s = &r->slots[i];
    snprintf(s->name, sizeof(s->name), "%s", cfg->slots[i]);
    snprintf(s->dir, sizeof(s->dir), "%s/%s", cfg->models_dir, cfg->slots[i]);
    s->cfg_pin = hr_config_pin(cfg, s->name);
    pthread_mutex_init(&s->mu, NULL);
  }
  r->gate_drop_pct = cfg->models_gate_max_drop_pct;
  r->gate_count_pct = cfg->models_gate_min_count_pct;
  return r;
}

void hr_snapshot_clear_aux(hr_snapshot_t *s) {
  hr_snapshot_aux_t *a = atomic_exchange(&s->aux, NULL);
  if (a != NULL)
    a->free(a);
}

static void snapshot_free(hr_snapshot_t *s) {
  if (s == NULL)
    return;
  hr_snapshot_clear_aux(s);
  hr_model_free(s->model);
  free(s);
  /* A version's tables are megabytes of heap: hand the freed pages back
   * now, so that the next swap's peak is two versions, not two plus what
   * the allocator kept of the last one. */
  malloc_trim(0);
}

void hr_registry_free(hr_registry_t *r) {
  if (r == NULL)
    return;
  hr_registry_collect(r);
  pthread_mutex_destroy(&r->retired_mu);
  for (int i = 0; i < r->n; i++) {
    snapshot_free(r->slots[i].cur);
    free(r->slots[i].refused_set);
    pthread_mutex_destroy(&r->slots[i].mu);
  }
  pthread_mutex_destroy(&r->scan_mu);
  free(r);
}

hr_snapshot_t *hr_registry_acquire(hr_registry_t *r, int slot) {
  hr_snapshot_t *s;
  if (slot < 0 || slot >= r->n)
    return NULL;
  pthread_mutex_lock(&r->slots[slot].mu);
  s = r->slots[slot].cur;
  if (s)
    s->_refs++;
  pthread_mutex_unlock(&r->slots[slot].mu);
  return s;
}

void hr_snapshot_release(hr_registry_t *r, int slot, hr_snapshot_t *s) {
  int last;
  if (s == NULL)
    return;
  pthread_mutex_lock(&r->slots[slot].mu);
  last = --s->_refs == 0;
  pthread_mutex_unlock(&r->slots[slot].mu);
  if (!last)
    return;
  /* The slot's own reference is gone: it was replaced. Freeing a version
   * (munmap, a heap trim) takes milliseconds, which a request thread must
   * not spend before its answer is sent: the collector frees it. */
  pthread_mutex_lock(&r->retired_mu);
  s->_next = r->retired;
  r->retired = s;
  pthread_mutex_unlock(&r->retired_mu);
  if (r->on_retire != NULL)
    r->on_retire(r->on_retire_arg);
  else
    hr_registry_collect(r);
}

void hr_registry_on_retire(hr_registry_t *r, void (*fn)(void *), void *arg) {
  r->on_retire = fn;
  r->on_retire_arg = arg;
}

int hr_registry_collect(hr_registry_t *r) {
  hr_snapshot_t *s;
  int n = 0;
  pthread_mutex_lock(&r->retired_mu);
  s = r->retired;
  r->retired = NULL;
  pthread_mutex_unlock(&r->retired_mu);
  while (s != NULL) {
    hr_snapshot_t *next = s->_next;
    snapshot_free(s);
    s = next;
    n++;
  }
  return n;
}

int hr_registry_n_slots(const hr_registry_t *r) { return r->n; }

const char *hr_registry_slot_name(const hr_registry_t *r, int slot) {
  return slot >= 0 && slot < r->n ? r->slots[slot].name : NULL;
}

unsigned long hr_registry_refused_count(const hr_registry_t *r) {
  return atomic_load(&((hr_registry_t *)r)->refused_total);
}

unsigned long hr_registry_gated_count(const hr_registry_t *r) {
  return atomic_load(&((hr_registry_t *)r)->gated_total);
}

/* A hash of the names, sizes and modification times of the files in a
 * version directory (and of the directory itself): it changes when a file
 * is rewritten, added, removed or renamed. */
static uint64_t version_sig(const slot_t *s, uint64_t v) {
  char dir[PATH_MAX], path[PATH_MAX];
  uint64_t h = 1469598103934665603ull;
  struct stat st;
  struct dirent *e;
  DIR *d;

  snprintf(dir, sizeof(dir), "%s/%llu", s->dir, (unsigned long long)v);
#define MIX(x) (h = (h ^ (uint64_t)(x)) * 1099511628211ull)
  if (stat(dir, &st) == 0) {
    MIX(st.st_mtim.tv_sec);
    MIX(st.st_mtim.tv_nsec);
    MIX(st.st_ctim.tv_nsec);
    MIX(st.st_ino);
  }
  if ((d = opendir(dir)) == NULL)
    return h;
  while ((e = readdir(d)) != NULL) {
    uint64_t fh = 1469598103934665603ull;
    if (e->d_name[0] == '.')
      continue;
    for (const char *p = e->d_name; *p; p++)
      fh = (fh ^ (unsigned char)*p) * 1099511628211ull;
    snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
    if (stat(path, &st) == 0)
      fh ^= (uint64_t)st.st_size * 31 + (uint64_t)st.st_mtim.tv_sec * 131 +
            (uint64_t)st.st_mtim.tv_nsec + (uint64_t)st.st_ctim.tv_sec * 7 +
            (uint64_t)st.st_ctim.tv_nsec * 3 + (uint64_t)st.st_ino * 17;
    h += fh * 0x9E3779B97F4A7C15ull; /* order-free: readdir's order varies */
  }
  closedir(d);
#undef MIX
  return h;
}

/* Index of v in the refused set, or -1. Caller holds mu. */
static long refused_at(const slot_t *s, uint64_t v) {
  size_t lo = 0, hi = s->n_refused_set;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (s->refused_set[mid].version < v)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < s->n_refused_set && s->refused_set[lo].version == v ? (long)lo
                                                                   : -1;
}

static int64_t mono_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Was v refused, with its files unchanged since? A version whose files
 * changed is forgotten, so that it is tried again. The files are looked
 * at no more than once a second per version (thousands of refused
 * versions must not cost a stat storm on every scan). */
static int is_refused(slot_t *s, uint64_t v) {
  long at;
  uint64_t sig;
  int64_t now = mono_ms();
  pthread_mutex_lock(&s->mu);
  at = refused_at(s, v);
  if (at >= 0 && now - s->refused_set[at].checked_ms < 1000) {
    pthread_mutex_unlock(&s->mu);
    return 1;
  }
  pthread_mutex_unlock(&s->mu);
  if (at < 0)
    return 0;
  sig = version_sig(s, v); /* outside the lock: file system calls */
  pthread_mutex_lock(&s->mu);
  at = refused_at(s, v);
  if (at >= 0)
    s->refused_set[at].checked_ms = now;
  if (at >= 0 && s->refused_set[at].sig != sig) {
    memmove(s->refused_set + at, s->refused_set + at + 1,
            (s->n_refused_set - (size_t)at - 1) * sizeof(refusal_t));
    s->n_refused_set--;
    at = -1;
  }
  pthread_mutex_unlock(&s->mu);
  if (at < 0)
    hr_log(HR_LOG_INFO, "model_retry",
           json_pack("{s:s,s:I,s:s}", "slot", s->name, "version",
                     (json_int_t)v, "reason", "its files changed"));
  return at >= 0;
}

/* Record v as refused; sig: its files' signature taken before the load
 * was tried, so that a file still being written when it failed makes the
 * next scan try again. */
static void refuse(hr_registry_t *r, slot_t *s, uint64_t v, const char *why,
                   uint64_t sig, int gate) {
  pthread_mutex_lock(&s->mu);
  if (s->n_refused_set == s->cap_refused_set) {
    size_t nc = s->cap_refused_set ? s->cap_refused_set * 2 : 16;
    refusal_t *n = realloc(s->refused_set, nc * sizeof(refusal_t));
    if (n != NULL) {
      s->refused_set = n;
      s->cap_refused_set = nc;
    }
  }
  if (refused_at(s, v) < 0 && /* else: retried, no harm */
      s->n_refused_set < s->cap_refused_set) {
    size_t i = s->n_refused_set++;
    while (i > 0 && s->refused_set[i - 1].version > v) {
      s->refused_set[i] = s->refused_set[i - 1];
      i--;
    }
    s->refused_set[i] = (refusal_t){v, sig, mono_ms(), gate};
  }
  refused_t *e = &s->reasons[s->n_refused % MAX_REASONS];
  e->version = v;
  snprintf(e->reason, sizeof(e->reason), "%s", why);
  s->n_refused++;
  pthread_mutex_unlock(&s->mu);
  atomic_fetch_add(&r->refused_total, 1);
  if (gate)
    atomic_fetch_add(&r->gated_total, 1);
  hr_log(HR_LOG_ERROR, "model_refused",
         json_pack("{s:s,s:I,s:s,s:b}", "slot", s->name, "version",
                   (json_int_t)v, "reason", why, "quality_gate", gate));
}

/* Forget that v was refused (a forced load served it). */
static void unrefuse(slot_t *s, uint64_t v) {
  pthread_mutex_lock(&s->mu);
  long at = refused_at(s, v);
  if (at >= 0) {
    memmove(s->refused_set + at, s->refused_set + at + 1,
            (s->n_refused_set - (size_t)at - 1) * sizeof(refusal_t));
    s->n_refused_set--;
  }
  pthread_mutex_unlock(&s->mu);
}

/* 1 when v is refused by the quality gate (so a rollback may force it). */
static int gate_refused(slot_t *s, uint64_t v) {
  pthread_mutex_lock(&s->mu);
  long at = refused_at(s, v);
  int g = at >= 0 && s->refused_set[at].gate;
  pthread_mutex_unlock(&s->mu);
  return g;
}

/* The quality gate (docs/operations.md): 0 when the new model m may
 * replace the serving one (cur, NULL: none), else 1 and the reason in
 * why. A forced version (fit --force) passes. */
static int gate_check(const hr_registry_t *r, const hr_model_t *cur,
                      const hr_model_t *m, char *why, size_t cap) {
  double a, b;
  const char *ha, *hb;
  if (cur == NULL || hr_model_forced(m))
    return 0;
  size_t ni = hr_model_n_items(m), nu = hr_model_n_users(m);
  size_t ci = hr_model_n_items(cur), cu = hr_model_n_users(cur);
  unsigned long long v0 = (unsigned long long)hr_model_version(cur);
  if ((double)ni * 100.0 < (double)ci * r->gate_count_pct ||
      (double)nu * 100.0 < (double)cu * r->gate_count_pct) {
    snprintf(why, cap, "quality gate: %zu items and %zu users against %zu "
             "and %zu in the serving version %llu, under "
             "models_gate_min_count_pct %d %%; publish with fit --force or "
             "take it with POST /admin/models/NAME/rollback", ni, nu, ci, cu, v0,
             r->gate_count_pct);
    return 1;
  }
  if (hr_model_validation(m, &b, &hb) && hr_model_validation(cur, &a, &ha) &&
      strcmp(ha, hb) == 0 && b < a * (1.0 - r->gate_drop_pct / 100.0)) {
    snprintf(why, cap, "quality gate: validation NDCG@10 %.4f is %.1f %% "
             "below the serving version %llu's %.4f on the same holdout "
             "(\"%.40s\"), over models_gate_max_drop_pct %d %%; publish "
             "with fit --force or take it with POST /admin/models/NAME/rollback", b,
             a > 0 ? 100.0 * (a - b) / a : 0.0, v0, a, hb,
             r->gate_drop_pct);
    return 1;
  }
  return 0;
}

static int cmp_desc(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x < y) - (x > y);
}

/* Numeric version directories of a slot newer than `above`, newest first
 * (new array, free()); *n their count. Every entry is read: the listing
 * order of a directory says nothing about versions. */
static uint64_t *list_versions(const char *dir, uint64_t above, size_t *n) {
  DIR *d = opendir(dir);
  struct dirent *e;
  uint64_t *v = NULL;
  size_t cap = 0;

  *n = 0;
  if (d == NULL)
    return NULL;
  while ((e = readdir(d)) != NULL) {
    const char *p = e->d_name;
    char *end;
    if (*p < '1' || *p > '9')
      continue; /* skips ".", "..", ".tmp-*" and "0" */
    errno = 0;
    unsigned long long x = strtoull(p, &end, 10);
    if (errno || *end != '\0' || x <= above)
      continue;
    if (*n == cap) {
      size_t nc = cap ? cap * 2 : 16;
      uint64_t *nv = realloc(v, nc * sizeof(uint64_t));
      if (nv == NULL)
        break;
      v = nv;
      cap = nc;
    }
    v[(*n)++] = x;
  }
  closedir(d);
  if (*n > 1)
    qsort(v, *n, sizeof(uint64_t), cmp_desc);
  return v;
}

/* Load version v of slot s completely and publish it: 1 published, 0
 * refused (recorded), HR_ENOMEM. `pin` (under the slot's mutex, with the
 * swap) becomes the slot's pin. The caller holds scan_mu. */
static int load_publish(hr_registry_t *r, slot_t *s, uint64_t v,
                        uint64_t pin, int force, hr_error_t *err) {
  char path[PATH_MAX], why[320];
  hr_model_t *m;
  hr_snapshot_t *snap, *old;
  struct timespec t0, t1;

  snprintf(path, sizeof(path), "%s/%llu", s->dir, (unsigned long long)v);
  uint64_t sig = version_sig(s, v);
  clock_gettime(CLOCK_MONOTONIC, &t0);
  m = hr_model_open(path, err);
  if (m != NULL && hr_model_smoke_test(m, err) != 0) {
    hr_model_free(m);
    m = NULL;
  }
  if (m == NULL) {
    struct stat st;
    /* Out of memory, or the version removed meanwhile (fit --keep): not
     * the version's fault, so not recorded; the next scan tries again. */
    if (err->code == HR_ENOMEM || stat(path, &st) != 0) {
      hr_log(HR_LOG_WARN, "model_load_failed",
             json_pack("{s:s,s:I,s:s}", "slot", s->name, "version",
                       (json_int_t)v, "reason",
                       err->msg[0] ? err->msg : hr_strerror(err->code)));
      return 0;
    }
    refuse(r, s, v, err->msg[0] ? err->msg : hr_strerror(err->code), sig,
           0);
    return 0;
  }
  /* the scanner holds scan_mu, as every writer of s->cur does */
  if (!force && gate_check(r, s->cur ? s->cur->model : NULL, m, why,
                           sizeof(why))) {
    hr_model_free(m);
    hr_error_set(err, HR_ECONFLICT, NULL, "%s", why);
    refuse(r, s, v, why, sig, 1);
    return 0;
  }
  if (force)
    unrefuse(s, v);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  snap = calloc(1, sizeof(*snap));
  if (snap == NULL) {
    hr_model_free(m);
    return hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
  }
  snap->model = m;
  snap->_refs = 1; /* the slot's reference */
  snprintf(snap->path, sizeof(snap->path), "%s", path);
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(snap->loaded_at, sizeof(snap->loaded_at), "%Y-%m-%dT%H:%M:%SZ",
           &tm);
  pthread_mutex_lock(&s->mu);
  old = s->cur;
  s->cur = snap;
  s->pinned = pin;
  pthread_mutex_unlock(&s->mu);
  pin = pin ? pin : s->cfg_pin;
  hr_log(HR_LOG_INFO, "model_loaded",
         json_pack("{s:s,s:I,s:s,s:I,s:f,s:b}", "slot", s->name, "version",
                   (json_int_t)v, "kind", hr_model_kind(m), "items",
                   (json_int_t)hr_model_n_items(m), "load_ms",
                   (t1.tv_sec - t0.tv_sec) * 1e3 +
                       (t1.tv_nsec - t0.tv_nsec) / 1e6,
                   "pinned", pin != 0));
  hr_snapshot_release(r, (int)(s - r->slots), old);
  return 1;
}

static int scan_slot(hr_registry_t *r, slot_t *s) {
  uint64_t *versions, current = 0;
  size_t n;
  int changed = 0;

  pthread_mutex_lock(&s->mu);
  if (s->cur)
    current = hr_model_version(s->cur->model);
  if (s->pinned != 0) { /* rolled back: stays until unpinned */
    pthread_mutex_unlock(&s->mu);
    return 0;
  }
  pthread_mutex_unlock(&s->mu);
  if (s->cfg_pin != 0) { /* models_pin: that version, whatever is newer */
    hr_error_t err = {0};
    if (current == s->cfg_pin || is_refused(s, s->cfg_pin))
      return 0;
    return load_publish(r, s, s->cfg_pin, 0, 1, &err) > 0;
  }
  versions = list_versions(s->dir, current, &n);
  for (size_t i = 0; i < n && !changed; i++) {
    hr_error_t err = {0};
    int rc;
    if (is_refused(s, versions[i]))
      continue;
    rc = load_publish(r, s, versions[i], 0, 0, &err);
    if (rc < 0)
      break;
    changed = rc;
  }
  free(versions);
  return changed;
}

int hr_registry_scan(hr_registry_t *r) {
  int changed = 0;
  pthread_mutex_lock(&r->scan_mu);
  for (int i = 0; i < r->n; i++)
    changed += scan_slot(r, &r->slots[i]);
  pthread_mutex_unlock(&r->scan_mu);
  hr_registry_collect(r); /* a version the scan replaced, now unused */
  return changed;
}

int hr_registry_find(const hr_registry_t *r, const char *name) {
  for (int i = 0; i < r->n; i++)
    if (strcmp(r->slots[i].name, name) == 0)
      return i;
  return -1;
}

int hr_registry_rollback(hr_registry_t *r, int slot, uint64_t version,
                         uint64_t *from, uint64_t *to, hr_error_t *err) {
  slot_t *s;
  uint64_t current = 0, *versions = NULL;
  size_t n = 0;
  int rc = 0, loaded = 0;

  if (slot < 0 || slot >= r->n)
    return hr_error_set(err, HR_ENOTFOUND, NULL, "no such model slot");
  s = &r->slots[slot];
  pthread_mutex_lock(&r->scan_mu);
  pthread_mutex_lock(&s->mu);
  if (s->cur)
    current = hr_model_version(s->cur->model);
  pthread_mutex_unlock(&s->mu);
  *from = current;
  *to = 0;
  if (version == 0) {
    /* The newest valid version older than the current: older versions are
     * tried newest first, and one that turns out to be refused is passed
     * over (it is recorded as refused, with its reason), as is one whose
     * directory went away meanwhile. */
    versions = list_versions(s->dir, 0, &n);
    for (size_t i = 0; i < n && version == 0; i++) {
      hr_error_t lerr = {0};
      if (versions[i] >= current || is_refused(s, versions[i]))
        continue;
      rc = load_publish(r, s, versions[i], versions[i], 1, &lerr);
      if (rc < 0 || (rc == 0 && lerr.code == HR_ENOMEM)) {
        /* not the version's fault: stop rather than pass over a good one */
        free(versions);
        rc = hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
        goto out;
      }
      if (rc > 0) {
        version = versions[i];
        loaded = 1;
      }
    }
    free(versions);
    if (version == 0) {
      rc = hr_error_set(err, HR_ECONFLICT, "version", "slot %s has no valid "
                        "version older than %llu on disk", s->name,
                        (unsigned long long)current);
      goto out;
    }
    rc = 0;
  } else {
    char path[PATH_MAX];
    struct stat st;
    if (version == current) {
      rc = hr_error_set(err, HR_ECONFLICT, "version", "version %llu is "
                        "already serving", (unsigned long long)version);
      goto out;
    }
    snprintf(path, sizeof(path), "%s/%llu", s->dir,
             (unsigned long long)version);
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
      rc = hr_error_set(err, HR_ENOTFOUND, "version", "slot %s has no "
                        "version %llu", s->name, (unsigned long long)version);
      goto out;
    }
    if (is_refused(s, version) && !gate_refused(s, version)) {
      rc = hr_error_set(err, HR_ECONFLICT, "version", "version %llu was "
                        "refused; see GET /models", (unsigned long long)version);
      goto out;
    }
  }
  if (!loaded) {
    hr_error_t lerr = {0};
    rc = load_publish(r, s, version, version, 1, &lerr);
    if (rc == 0) {
      rc = hr_error_set(err, HR_ECONFLICT, "version", "version %llu refused: "
                        "%s", (unsigned long long)version,
                        lerr.msg[0] ? lerr.msg : hr_strerror(lerr.code));
      goto out;
    }
    if (rc < 0) {
      rc = hr_error_set(err, rc, NULL, "out of memory");
      goto out;
    }
    rc = 0;
  }
  *to = version;
  atomic_fetch_add(&r->rollbacks_total, 1);
  hr_log(HR_LOG_WARN, "model_rollback",
         json_pack("{s:s,s:I,s:I}", "slot", s->name, "from",
                   (json_int_t)current, "to", (json_int_t)version));
out:
  pthread_mutex_unlock(&r->scan_mu);
  return rc;
}

int hr_registry_reload(hr_registry_t *r, int *changed) {
  int n = 0;
  pthread_mutex_lock(&r->scan_mu); /* no rollback or scan in between */
  for (int i = 0; i < r->n; i++) {
    pthread_mutex_lock(&r->slots[i].mu);
    n += r->slots[i].pinned != 0;
    r->slots[i].pinned = 0;
    pthread_mutex_unlock(&r->slots[i].mu);
  }
  *changed = 0;
  for (int i = 0; i < r->n; i++)
    *changed += scan_slot(r, &r->slots[i]);
  pthread_mutex_unlock(&r->scan_mu);
  return n;
}

unsigned long hr_registry_rollbacks(const hr_registry_t *r) {
  return atomic_load(&((hr_registry_t *)r)->rollbacks_total);
}

json_t *hr_registry_describe(hr_registry_t *r) {
  json_t *slots = json_array();

  for (int i = 0; i < r->n; i++) {
    slot_t *s = &r->slots[i];
    json_t *o = json_pack("{s:s}", "name", s->name);
    json_t *refused = json_array();
    hr_snapshot_t *snap = hr_registry_acquire(r, i);

    if (snap) {
      const hr_model_t *m = snap->model;
      const json_t *man = hr_model_manifest(m);
      json_t *metrics = man ? json_object_get(man, "metrics") : NULL;
      json_object_set_new(o, "version", json_integer((json_int_t)hr_model_version(m)));
      json_object_set_new(o, "kind", json_string(hr_model_kind(m)));
      json_object_set_new(o, "loaded_at", json_string(snap->loaded_at));
      json_object_set_new(o, "dim", json_integer(hr_model_dim(m)));
      json_object_set_new(o, "n_items", json_integer((json_int_t)hr_model_n_items(m)));
      json_object_set_new(o, "n_users", json_integer((json_int_t)hr_model_n_users(m)));
      json_object_set_new(o, "size_bytes",
                          json_integer((json_int_t)hr_model_size_bytes(m)));
      json_object_set_new(o, "path", json_string(snap->path));
      json_object_set_new(o, "metrics",
                          metrics ? json_deep_copy(metrics) : json_object());
      /* what a request can pass that this version reads */
      json_t *attrs = json_array(), *cf = json_array();
      for (size_t k = 0; k < hr_model_n_attrs(m); k++)
        json_array_append_new(attrs, json_string(hr_model_attr_name(m, k)));
      for (size_t k = 0; k < hr_model_n_context_fields(m); k++)
        json_array_append_new(cf, json_string(hr_model_context_field(m, k)));
      json_object_set_new(o, "item_attributes", attrs);
      json_object_set_new(o, "context_fields", cf);
      json_object_set_new(o, "context_features",
                          json_boolean(hr_model_context_features(m)));
      const json_t *rep = hr_model_report(m);
      json_object_set_new(o, "report",
                          rep ? json_deep_copy(rep) : json_null());
      hr_snapshot_release(r, i, snap);
    } else {
      json_object_set_new(o, "version", json_null());
    }
    pthread_mutex_lock(&s->mu);
    uint64_t pin = s->pinned ? s->pinned : s->cfg_pin;
    json_object_set_new(o, "pinned",
                        pin ? json_integer((json_int_t)pin) : json_null());
    json_object_set_new(o, "pinned_by",
                        s->pinned ? json_string("rollback")
                        : s->cfg_pin ? json_string("config")
                                     : json_null());
    int n = s->n_refused < MAX_REASONS ? s->n_refused : MAX_REASONS;
    for (int j = 0; j < n; j++) { /* newest first */
      const refused_t *f = &s->reasons[(s->n_refused - 1 - j) % MAX_REASONS];
      int seen = 0;
      /* only versions still refused (a repaired one is retried and leaves
       * the set), each once, with its latest reason */
      if (refused_at(s, f->version) < 0)
        continue;
      for (int k = 0; k < j && !seen; k++)
        seen = s->reasons[(s->n_refused - 1 - k) % MAX_REASONS].version ==
               f->version;
      if (seen)
        continue;
      json_array_append_new(
          refused, json_pack("{s:I,s:s}", "version", (json_int_t)f->version,
                             "reason", f->reason));
    }
    pthread_mutex_unlock(&s->mu);
    json_object_set_new(o, "refused", refused);
    json_array_append_new(slots, o);
  }
  return json_pack("{s:o}", "slots", slots);
}
