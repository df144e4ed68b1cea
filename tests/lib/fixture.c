/* fixture.c -- a small trained model shared by the tests (see fixture.h). */
#include "lib/fixture.h"

#include "lib/proc.h"
#include "test.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------ files */

int hrt_mkdirs(const char *path) {
  char tmp[PATH_MAX];
  size_t len = strlen(path);

  if (len == 0 || len >= sizeof(tmp))
    return -1;
  memcpy(tmp, path, len + 1);
  for (char *p = tmp + 1; *p != '\0'; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
      return -1;
    *p = '/';
  }
  if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
    return -1;
  return 0;
}

static int copy_file(const char *from, const char *to) {
  char buf[65536];
  int in = open(from, O_RDONLY | O_CLOEXEC), out;
  ssize_t r;
  int rc = 0;

  if (in < 0)
    return -1;
  out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out < 0) {
    close(in);
    return -1;
  }
  while ((r = read(in, buf, sizeof(buf))) > 0) {
    char *p = buf;
    while (r > 0) {
      ssize_t w = write(out, p, (size_t)r);
      if (w <= 0) {
        rc = -1;
        break;
      }
      p += w;
      r -= w;
    }
    if (rc != 0)
      break;
  }
  if (r < 0)
    rc = -1;
  close(in);
  if (close(out) != 0)
    rc = -1;
  return rc;
}

int hrt_copy_tree(const char *from, const char *to) {
  DIR *d;
  struct dirent *e;
  int rc = 0;

  if (hrt_mkdirs(to) != 0 || (d = opendir(from)) == NULL)
    return -1;
  while (rc == 0 && (e = readdir(d)) != NULL) {
    char a[PATH_MAX], b[PATH_MAX];
    struct stat st;
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    hrt_fmt(a, sizeof(a), "%s/%s", from, e->d_name);
    hrt_fmt(b, sizeof(b), "%s/%s", to, e->d_name);
    if (stat(a, &st) != 0)
      rc = -1;
    else if (S_ISDIR(st.st_mode))
      rc = hrt_copy_tree(a, b);
    else if (S_ISREG(st.st_mode))
      rc = copy_file(a, b);
  }
  closedir(d);
  return rc;
}

/* The largest all-digits entry of slot_dir, or -1. */
static long long newest_version(const char *slot_dir) {
  DIR *d = opendir(slot_dir);
  struct dirent *e;
  long long best = -1;

  if (d == NULL)
    return -1;
  while ((e = readdir(d)) != NULL) {
    const char *p = e->d_name;
    if (*p == '\0' || strspn(p, "0123456789") != strlen(p))
      continue;
    if (atoll(p) > best)
      best = atoll(p);
  }
  closedir(d);
  return best;
}

/* ------------------------------------------------------------ the fixture */

static void fixture_paths(hrt_fixture_t *f, const char *dir) {
  hrt_fmt(f->dir, sizeof(f->dir), "%s", dir);
  hrt_fmt(f->data, sizeof(f->data), "%s/data", dir);
}

static void trainer_stamp(const char *train, char *out, size_t n) {
  struct stat st;

  if (stat(train, &st) != 0)
    hrt_fmt(out, n, "missing\n");
  else
    hrt_fmt(out, n, "recipe=2 size=%lld mtime=%lld.%09ld users=%d "
                     "items=%d events=%d\n",
             (long long)st.st_size, (long long)st.st_mtim.tv_sec,
             st.st_mtim.tv_nsec, HRT_FIXTURE_USERS, HRT_FIXTURE_ITEMS,
             HRT_FIXTURE_EVENTS);
}

static int read_small(const char *path, char *out, size_t n) {
  FILE *f = fopen(path, "r");
  size_t r;

  if (f == NULL)
    return -1;
  r = fread(out, 1, n - 1, f);
  out[r] = '\0';
  fclose(f);
  return 0;
}

/* Build into dir.tmp, then rename over dir. Called with the lock held. */
static int fixture_build(const char *dir, const char *train,
                         const char *stamp) {
  char tmp[PATH_MAX], data[PATH_MAX], events[PATH_MAX], slot[PATH_MAX];
  char log[PATH_MAX], path[PATH_MAX];
  char users[16], items[16], nev[16];
  int timeout = 180000 * hrt_mult();
  long long t0 = hrt_now_ms();
  FILE *f;

  hrt_fmt(tmp, sizeof(tmp), "%s.tmp", dir);
  hr_test_rmtree(tmp);
  if (hrt_mkdirs(tmp) != 0) {
    fprintf(stderr, "  fixture: mkdir %s: %s\n", tmp, strerror(errno));
    return -1;
  }
  hrt_fmt(data, sizeof(data), "%s/data", tmp);
  hrt_fmt(events, sizeof(events), "%s/events.csv", data);
  hrt_fmt(slot, sizeof(slot), "%s/models/default", tmp);
  hrt_fmt(log, sizeof(log), "%s/build.log", tmp);
  hrt_fmt(users, sizeof(users), "%d", HRT_FIXTURE_USERS);
  hrt_fmt(items, sizeof(items), "%d", HRT_FIXTURE_ITEMS);
  hrt_fmt(nev, sizeof(nev), "%d", HRT_FIXTURE_EVENTS);
  fprintf(stderr, "  fixture: building %s with %s\n", dir, train);
  {
    const char *gen[] = {train, "gen", "--out", data, "--users", users,
                         "--items", items, "--events", nev, "--seed", "7",
                         NULL};
    if (hrt_run(gen, log, timeout) != 0)
      return -1;
  }
  {
    char items_csv[PATH_MAX], users_csv[PATH_MAX];
    hrt_fmt(items_csv, sizeof(items_csv), "%s/items.csv", data);
    hrt_fmt(users_csv, sizeof(users_csv), "%s/users.csv", data);
    const char *fit[] = {train, "fit", "--data", events, "--format", "csv",
                         "--items", items_csv, "--users", users_csv,
                         "--out", slot, "--kind", "ials", NULL};
    if (hrt_run(fit, log, timeout) != 0)
      return -1;
  }
  if (newest_version(slot) < 0) {
    fprintf(stderr, "  fixture: fit wrote no version directory in %s\n",
            slot);
    hrt_print_tail("trainer log", log, 20);
    return -1;
  }
  hrt_fmt(path, sizeof(path), "%s/stamp", tmp);
  f = fopen(path, "w");
  if (f == NULL || fputs(stamp, f) < 0 || fclose(f) != 0)
    return -1;
  hr_test_rmtree(dir);
  if (rename(tmp, dir) != 0) {
    fprintf(stderr, "  fixture: rename %s: %s\n", tmp, strerror(errno));
    return -1;
  }
  fprintf(stderr, "  fixture: built in %lld ms\n", hrt_now_ms() - t0);
  return 0;
}

int hrt_fixture_get(hrt_fixture_t *f) {
  char dir[PATH_MAX], lock[PATH_MAX], train[PATH_MAX], slot[PATH_MAX];
  char want[256], have[256], path[PATH_MAX], tag[PATH_MAX];
  const char *env = getenv("HR_FIXTURE_DIR");
  const char *bindir = getenv("HR_BIN_DIR");
  int fd, rc = 0;

  memset(f, 0, sizeof(*f));
  hrt_bin_path("hyperrec-train", train, sizeof(train));
  if (access(train, X_OK) != 0) {
    fprintf(stderr, "  fixture: %s: %s (run make first)\n", train,
            strerror(errno));
    return -1;
  }
  /* One cache per binary directory, so bin/ and build-asan/bin/ coexist. */
  hrt_fmt(tag, sizeof(tag), "%s", bindir && *bindir ? bindir : "bin");
  for (char *p = tag; *p; p++)
    if (*p == '/' || *p == '.')
      *p = '_';
  if (env && *env)
    hrt_fmt(dir, sizeof(dir), "%s/%s", env, tag);
  else
    hrt_fmt(dir, sizeof(dir), "%s/build/test-fixtures/%s", hr_test_root(),
             tag);
  {
    char parent[PATH_MAX];
    hrt_fmt(parent, sizeof(parent), "%s", dir);
    *strrchr(parent, '/') = '\0';
    if (hrt_mkdirs(parent) != 0) {
      fprintf(stderr, "  fixture: mkdir %s: %s\n", parent, strerror(errno));
      return -1;
    }
  }
  hrt_fmt(lock, sizeof(lock), "%s.lock", dir);
  fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0 || flock(fd, LOCK_EX) != 0) {
    fprintf(stderr, "  fixture: lock %s: %s\n", lock, strerror(errno));
    if (fd >= 0)
      close(fd);
    return -1;
  }
  trainer_stamp(train, want, sizeof(want));
  hrt_fmt(path, sizeof(path), "%s/stamp", dir);
  hrt_fmt(slot, sizeof(slot), "%s/models/default", dir);
  if (read_small(path, have, sizeof(have)) != 0 || strcmp(have, want) != 0 ||
      newest_version(slot) < 0)
    rc = fixture_build(dir, train, want);
  flock(fd, LOCK_UN);
  close(fd);
  if (rc != 0)
    return -1;
  fixture_paths(f, dir);
  hrt_fmt(f->lock, sizeof(f->lock), "%s", lock);
  f->version = newest_version(slot);
  hrt_fmt(f->version_dir, sizeof(f->version_dir), "%s/%lld", slot,
           f->version);
  return 0;
}

/* Copy under a shared lock: no rebuild may replace the cache meanwhile.
 * Returns 0, -1, or 1 when the version vanished (rebuilt since _get). */
static int install_locked(const hrt_fixture_t *f, const char *models_dir) {
  char to[PATH_MAX];
  int fd, rc;

  fd = open(f->lock, O_RDWR | O_CLOEXEC);
  if (fd < 0 || flock(fd, LOCK_SH) != 0) {
    fprintf(stderr, "  fixture: lock %s: %s\n", f->lock, strerror(errno));
    if (fd >= 0)
      close(fd);
    return -1;
  }
  if (access(f->version_dir, R_OK) != 0) {
    rc = 1;
  } else {
    hrt_fmt(to, sizeof(to), "%s/default/%lld", models_dir, f->version);
    rc = hrt_copy_tree(f->version_dir, to);
    if (rc != 0)
      fprintf(stderr, "  fixture: copy %s -> %s: %s\n", f->version_dir, to,
              strerror(errno));
  }
  flock(fd, LOCK_UN);
  close(fd);
  return rc;
}

int hrt_fixture_install(hrt_fixture_t *f, const char *models_dir) {
  int rc = install_locked(f, models_dir);

  /* The trainer was rebuilt (by a concurrent make) since hrt_fixture_get:
   * take the new fixture once. */
  if (rc == 1 && hrt_fixture_get(f) == 0)
    rc = install_locked(f, models_dir);
  if (rc == 1)
    fprintf(stderr, "  fixture: %s vanished\n", f->version_dir);
  return rc == 0 ? 0 : -1;
}

/* ------------------------------------------------------------ string lists */

void hrt_strv_free(hrt_strv_t *s) {
  for (size_t i = 0; i < s->n; i++)
    free(s->v[i]);
  free(s->v);
  s->v = NULL;
  s->n = 0;
}

int hrt_strv_add(hrt_strv_t *s, const char *str) {
  char **v = realloc(s->v, (s->n + 1) * sizeof(*v));
  if (v == NULL)
    return -1;
  s->v = v;
  if ((s->v[s->n] = strdup(str)) == NULL)
    return -1;
  s->n++;
  return 0;
}

int hrt_strv_has(const hrt_strv_t *s, const char *str) {
  for (size_t i = 0; i < s->n; i++)
    if (strcmp(s->v[i], str) == 0)
      return 1;
  return 0;
}

/* ------------------------------------------------------------ events.csv */

/* Column index of name in a CSV header line, or -1. */
static int csv_col(const char *header, const char *name) {
  int col = 0;
  size_t nlen = strlen(name);

  for (const char *p = header;; col++) {
    size_t len = strcspn(p, ",\r\n");
    if (len == nlen && strncmp(p, name, nlen) == 0)
      return col;
    if (p[len] != ',')
      return -1;
    p += len + 1;
  }
}

/* Copy column col of line into out (no quoting in generated files). */
static int csv_field(const char *line, int col, char *out, size_t n) {
  const char *p = line;
  size_t len;

  for (int i = 0; i < col; i++) {
    p = strchr(p, ',');
    if (p == NULL)
      return -1;
    p++;
  }
  len = strcspn(p, ",\r\n");
  if (len >= n)
    return -1;
  memcpy(out, p, len);
  out[len] = '\0';
  return 0;
}

typedef int (*row_fn)(const char *user, const char *item, void *arg);

static int each_event(const hrt_fixture_t *f, row_fn fn, void *arg) {
  char path[PATH_MAX], line[4096], user[256], item[256];
  FILE *fp;
  int cu, ci, rc = 0;

  hrt_fmt(path, sizeof(path), "%s/events.csv", f->data);
  fp = fopen(path, "r");
  if (fp == NULL) {
    fprintf(stderr, "  fixture: %s: %s\n", path, strerror(errno));
    return -1;
  }
  if (fgets(line, sizeof(line), fp) == NULL ||
      (cu = csv_col(line, "user_id")) < 0 ||
      (ci = csv_col(line, "item_id")) < 0) {
    fprintf(stderr, "  fixture: %s: no user_id,item_id header\n", path);
    fclose(fp);
    return -1;
  }
  while (rc == 0 && fgets(line, sizeof(line), fp) != NULL)
    if (csv_field(line, cu, user, sizeof(user)) == 0 &&
        csv_field(line, ci, item, sizeof(item)) == 0)
      rc = fn(user, item, arg);
  fclose(fp);
  return rc;
}

typedef struct {
  hrt_strv_t users;
  size_t *counts;
} count_ctx;

static int count_row(const char *user, const char *item, void *arg) {
  count_ctx *c = arg;
  size_t *counts;

  (void)item;
  for (size_t i = 0; i < c->users.n; i++)
    if (strcmp(c->users.v[i], user) == 0) {
      c->counts[i]++;
      return 0;
    }
  if (hrt_strv_add(&c->users, user) != 0)
    return -1;
  counts = realloc(c->counts, c->users.n * sizeof(*counts));
  if (counts == NULL)
    return -1;
  c->counts = counts;
  c->counts[c->users.n - 1] = 1;
  return 0;
}

int hrt_fixture_top_users(const hrt_fixture_t *f, size_t n, hrt_strv_t *out) {
  count_ctx c = {{0}, NULL};
  int rc = each_event(f, count_row, &c);

  for (size_t k = 0; rc == 0 && k < n && k < c.users.n; k++) {
    size_t best = 0;
    for (size_t i = 1; i < c.users.n; i++)
      if (c.counts[i] > c.counts[best])
        best = i;
    rc = hrt_strv_add(out, c.users.v[best]);
    c.counts[best] = 0;
  }
  hrt_strv_free(&c.users);
  free(c.counts);
  return rc;
}

typedef struct {
  const char *user;
  hrt_strv_t *out;
} items_ctx;

static int items_row(const char *user, const char *item, void *arg) {
  items_ctx *c = arg;

  if (strcmp(user, c->user) != 0 || hrt_strv_has(c->out, item))
    return 0;
  return hrt_strv_add(c->out, item);
}

int hrt_fixture_user_items(const hrt_fixture_t *f, const char *user_id,
                           hrt_strv_t *out) {
  items_ctx c = {user_id, out};
  return each_event(f, items_row, &c);
}
