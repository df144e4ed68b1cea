/* fixture.h -- a small trained model shared by the integration tests.
 *
 * `hyperrec-train gen` (300 users, 200 items, 8000 events, fixed seed) then
 * `hyperrec-train fit --items` (so items.tsv carries the category, style and
 * duration_min attributes) run once per trainer binary: the result is cached in
 * build/test-fixtures/<bin dir>/ (or $HR_FIXTURE_DIR) together with a stamp
 * of the trainer binary (size and mtime), and rebuilt when the trainer
 * changes. An exclusive flock on a sibling ".lock" file serialises builders,
 * so forked or parallel test processes never race; the build happens in a
 * temporary directory that is renamed into place, so a killed build leaves
 * nothing half-made. Tests copy the version directory into their own models
 * directory (hrt_fixture_install) and never write to the cache. */
#ifndef HRT_FIXTURE_H
#define HRT_FIXTURE_H

#include <limits.h>
#include <stddef.h>

#define HRT_FIXTURE_USERS 300
#define HRT_FIXTURE_ITEMS 200
#define HRT_FIXTURE_EVENTS 8000

typedef struct {
  char dir[PATH_MAX];          /* the cache directory */
  char data[PATH_MAX];         /* dir/data: events.csv items.csv ... */
  char version_dir[PATH_MAX];  /* dir/models/default/<version> */
  long long version;           /* the newest version fit produced */
  char lock[PATH_MAX];         /* the cache's lock file */
} hrt_fixture_t;

/** Get the cached fixture, building it when missing or stale (which may
 *  take a while: up to 180 s x mult). Returns 0 or -1 (reason on stderr). */
int hrt_fixture_get(hrt_fixture_t *f);

/** Copy the fixture's model into models_dir/default/<version>/ (creating
 *  the directories). When a concurrent rebuild replaced the cache since
 *  hrt_fixture_get, f is refreshed first. Returns 0 or -1. */
int hrt_fixture_install(hrt_fixture_t *f, const char *models_dir);

/** A list of strings (ids). Free with hrt_strv_free. */
typedef struct {
  char **v;
  size_t n;
} hrt_strv_t;

void hrt_strv_free(hrt_strv_t *s);
int hrt_strv_add(hrt_strv_t *s, const char *str);
/** 1 when s holds str. */
int hrt_strv_has(const hrt_strv_t *s, const char *str);

/** The n users with the most events in events.csv, most active first.
 *  Returns 0 or -1. */
int hrt_fixture_top_users(const hrt_fixture_t *f, size_t n, hrt_strv_t *out);
/** The distinct items user_id interacted with in events.csv, in file order.
 *  Returns 0 or -1. */
int hrt_fixture_user_items(const hrt_fixture_t *f, const char *user_id,
                           hrt_strv_t *out);

/** Recursively copy a directory (regular files and subdirectories). */
int hrt_copy_tree(const char *from, const char *to);
/** mkdir -p. */
int hrt_mkdirs(const char *path);

#endif
