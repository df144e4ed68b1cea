/* gen.c -- a synthetic but realistic data set with context effects, for the
 * demo and the tests (see train.h). The shared data sets are never copied
 * into the project; this generator stands in for them.
 *
 * The world: items in 10 categories, each category split into 4 "styles";
 * users with a taste over categories, a favourite style per category, a
 * time zone, a mood bias and an activity level. An event happens at a local
 * time drawn from daily rhythms; where the user is (home, work, commute,
 * gym) follows from the hour and weekday; mood and device follow from both.
 * The category is a softmax of taste + context boosts (news in the morning,
 * podcasts on the commute, upbeat music at the gym or when energetic, calm
 * music when sad or tired, drama and comedy on evenings at home, kids' shows
 * on weekend mornings, ...); the item inside it is popularity-weighted, in
 * the user's favourite style 70% of the time. */
#include "hr/train.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { NCAT = 10, NSTYLE = 4, NLOC = 4, NMOOD = 5, NDEV = 4, NTZ = 4 };

static const char *const cat_name[NCAT] = {
    "news", "podcast", "music_upbeat", "music_calm", "comedy",
    "drama", "documentary", "kids", "sports", "cooking"};
static const char *const style_name[NSTYLE] = {"classic", "indie", "mainstream",
                                               "niche"};
static const char *const loc_name[NLOC] = {"home", "work", "commute", "gym"};
static const char *const mood_name[NMOOD] = {"happy", "calm", "sad",
                                             "energetic", "tired"};
static const char *const dev_name[NDEV] = {"mobile", "desktop", "tv",
                                           "tablet"};
static const char *const tz_name[NTZ] = {"UTC", "Europe/Berlin",
                                         "America/New_York", "Asia/Tokyo"};
static const int tz_off[NTZ] = {0, 1, -5, 9}; /* January: no DST */

#define T0 1704067200 /* 2024-01-01 00:00 UTC, a Monday */
#define DAYS 56

typedef struct {
  uint64_t s;
} rng_t;

static uint64_t next(rng_t *r) {
  uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static double unif(rng_t *r) {
  return (double)(next(r) >> 11) * (1.0 / 9007199254740992.0);
}

static size_t below(rng_t *r, size_t n) { return (size_t)(unif(r) * n); }

static size_t pick(rng_t *r, const double *w, size_t n) {
  double t = 0, x;
  for (size_t i = 0; i < n; i++)
    t += w[i];
  x = unif(r) * t;
  for (size_t i = 0; i < n; i++) {
    if (x < w[i])
      return i;
    x -= w[i];
  }
  return n - 1;
}

typedef struct {
  double taste[NCAT];
  int style[NCAT];
  int tz, mood_bias, kids;
  double activity;
} user_t;

typedef struct {
  int64_t ts;
  uint32_t user, item;
  uint8_t rating, loc, mood, dev;
} gev_t;

static int cmp_gev(const void *a, const void *b) {
  const gev_t *x = a, *y = b;
  if (x->ts != y->ts)
    return x->ts < y->ts ? -1 : 1;
  return x->user < y->user ? -1 : x->user > y->user;
}

/* Items of one (category, style) bucket with cumulative popularity. */
typedef struct {
  uint32_t *items;
  double *cum;
  size_t n;
} bucket_t;

static size_t pick_cum(rng_t *r, const double *cum, size_t n) {
  double x = unif(r) * cum[n - 1];
  size_t lo = 0, hi = n - 1;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (cum[mid] > x)
      hi = mid;
    else
      lo = mid + 1;
  }
  return lo;
}

static void context_of(rng_t *r, const user_t *u, int hour, int weekend,
                       int *loc, int *mood, int *dev) {
  double m[NMOOD] = {1, 1, 0.5, 0.8, 0.8};

  if (!weekend && (hour == 7 || hour == 8 || hour == 17 || hour == 18))
    *loc = unif(r) < 0.6 ? 2 : 0;
  else if (!weekend && hour >= 9 && hour <= 16)
    *loc = unif(r) < 0.8 ? 1 : 2;
  else if (hour >= 18 && hour <= 20 && unif(r) < 0.12)
    *loc = 3;
  else if (weekend && hour >= 9 && hour <= 12 && unif(r) < 0.15)
    *loc = 3;
  else
    *loc = 0;
  m[u->mood_bias] += 2.0;
  if (*loc == 3)
    m[3] += 3.0;
  if (hour >= 22 || hour <= 6)
    m[4] += 2.0;
  if (*loc == 1)
    m[1] += 0.5;
  *mood = (int)pick(r, m, NMOOD);
  if (*loc == 2 || *loc == 3)
    *dev = 0;
  else if (*loc == 1)
    *dev = unif(r) < 0.7 ? 1 : 0;
  else if (hour >= 18)
    *dev = unif(r) < 0.5 ? 2 : (unif(r) < 0.5 ? 3 : 0);
  else
    *dev = unif(r) < 0.4 ? 3 : 0;
}

/* The category: a softmax of the user's taste plus the context's boosts,
 * scaled by `strength` (gen --context-effect). */
static int category_of(rng_t *r, const user_t *u, int hour, int weekend,
                       int loc, int mood, double strength) {
  double w[NCAT];
  for (int c = 0; c < NCAT; c++) {
    double b = log(u->taste[c]);
    if (c == 0 && hour >= 6 && hour <= 9)
      b += strength * 1.5;
    if (c == 1 && loc == 2)
      b += strength * 1.8;
    if (c == 0 && loc == 2)
      b += strength * 0.8;
    if (c == 2 && (loc == 3 || mood == 3))
      b += strength * 2.0;
    if (c == 3 && (mood == 2 || mood == 1 || mood == 4))
      b += strength * 1.2;
    if ((c == 4 || c == 5) && loc == 0 && hour >= 19)
      b += strength * 1.0;
    if (c == 4 && mood == 0)
      b += strength * 0.6;
    if (c == 7 && u->kids && weekend && hour <= 12)
      b += strength * 2.0;
    if (c == 8 && weekend && hour >= 14)
      b += strength * 1.0;
    if (c == 9 && (hour == 12 || hour == 18 || hour == 19) && loc == 0)
      b += strength * 1.2;
    if (c == 6 && loc == 1)
      b += strength * 0.5;
    w[c] = exp(b);
  }
  return (int)pick(r, w, NCAT);
}

static const char *const bot_kind[3] = {"random", "hammer", "script"};

/* bots.csv: the bot accounts and their kinds (the anomaly check's truth). */
static int write_bots(const char *dir, const hr_gen_opts_t *o,
                      const int *kinds, size_t nb, hr_error_t *err) {
  char path[4096];
  FILE *f;
  snprintf(path, sizeof(path), "%s/bots.csv", dir);
  if ((f = fopen(path, "w")) == NULL)
    return hr_error_set(err, HR_EIO, NULL, "%s: %s", path, strerror(errno));
  fputs("user_id,kind\n", f);
  for (size_t b = 0; b < nb; b++)
    fprintf(f, "u%05zu,%s\n", o->users + b + 1, bot_kind[kinds[b]]);
  if (fclose(f) != 0)
    return hr_error_set(err, HR_EIO, NULL, "%s: %s", path, strerror(errno));
  return 0;
}

/* The four files (events sorted by time). */
static int write_files(const char *dir, const hr_gen_opts_t *o,
                       const user_t *users, const gev_t *ev, size_t ne,
                       const int *icat, const int *isty, hr_error_t *err) {
  size_t nu = o->users, ni = o->items;
  char path[4096];
  FILE *f = NULL;

  snprintf(path, sizeof(path), "%s/events.csv", dir);
  if ((f = fopen(path, "w")) == NULL)
    goto io;
  fputs("user_id,item_id,rating,ts,location,mood,device\n", f);
  for (size_t e = 0; e < ne; e++)
    fprintf(f, "u%05u,i%05u,%u,%lld,%s,%s,%s\n", ev[e].user + 1,
            ev[e].item + 1, ev[e].rating, (long long)ev[e].ts,
            loc_name[ev[e].loc], mood_name[ev[e].mood], dev_name[ev[e].dev]);
  if (fclose(f) != 0) {
    f = NULL;
    goto io;
  }
  snprintf(path, sizeof(path), "%s/items.csv", dir);
  if ((f = fopen(path, "w")) == NULL)
    goto io;
  fputs("item_id,category,style,duration_min\n", f);
  for (size_t i = 0; i < ni; i++)
    fprintf(f, "i%05zu,%s,%s,%d\n", i + 1, cat_name[icat[i]],
            style_name[isty[i]], 3 + (int)((i * 37) % 88));
  if (fclose(f) != 0) {
    f = NULL;
    goto io;
  }
  /* users.csv: what a sign-up form would know. The age follows the
   * user's strongest category 70% of the time (a hash of the user, so the
   * events above do not change), the household whether kids' shows get a
   * boost: attributes the prior for new users can learn from. */
  snprintf(path, sizeof(path), "%s/users.csv", dir);
  if ((f = fopen(path, "w")) == NULL)
    goto io;
  fputs("user_id,age,household\n", f);
  for (size_t u = 0; u < nu; u++) {
    static const int cat_age[NCAT] = {52, 38, 21, 45, 29, 41, 60, 35, 27, 48};
    rng_t h = {(uint64_t)u * 0x2545F4914F6CDD1Dull + o->seed};
    int top = 0, age;
    for (int c = 1; c < NCAT; c++)
      if (users[u].taste[c] > users[u].taste[top])
        top = c;
    age = unif(&h) < 0.7 ? cat_age[top] - 2 + (int)below(&h, 5)
                         : 16 + (int)below(&h, 60);
    fprintf(f, "u%05zu,%d,%s\n", u + 1, age,
            users[u].kids ? "family" : "no_kids");
  }
  if (fclose(f) != 0) {
    f = NULL;
    goto io;
  }
  snprintf(path, sizeof(path), "%s/contexts.csv", dir);
  if ((f = fopen(path, "w")) == NULL)
    goto io;
  fputs("user_id,location,mood,tz\n", f);
  for (size_t u = 0; u < nu; u++)
    fprintf(f, "u%05zu,%s,%s,%s\n", u + 1, loc_name[u % 7 == 3 ? 1 : 0],
            mood_name[users[u].mood_bias], tz_name[users[u].tz]);
  if (fclose(f) != 0) {
    f = NULL;
    goto io;
  }
  return 0;
io:
  if (f != NULL)
    fclose(f);
  return hr_error_set(err, HR_EIO, NULL, "%s: %s", path, strerror(errno));
}

/* Bot accounts (gen --bots F): F x users accounts after the users, of
 * three kinds in turn -- uniform random items, one item hammered, and one
 * scripted sequence of 25 items replayed by every account of that kind at
 * 30 s intervals. Their events are appended to *ev (grown); kinds[b] is
 * account b's kind. 0 or HR_ENOMEM. */
static int make_bots(rng_t *r, const hr_gen_opts_t *o, size_t nb, gev_t **ev,
                     size_t *ne, int *kinds) {
  enum { N_RANDOM = 40, N_HAMMER = 60, N_SCRIPT = 25 };
  size_t ni = o->items, extra = 0, e = *ne;
  uint32_t script[N_SCRIPT];
  for (size_t b = 0; b < nb; b++)
    extra += b % 3 == 0 ? N_RANDOM : b % 3 == 1 ? N_HAMMER : N_SCRIPT;
  gev_t *g = realloc(*ev, (e + extra) * sizeof(*g));
  if (g == NULL)
    return HR_ENOMEM;
  *ev = g;
  for (int k = 0; k < N_SCRIPT; k++)
    script[k] = (uint32_t)below(r, ni);
  for (size_t b = 0; b < nb; b++) {
    uint32_t user = (uint32_t)(o->users + b);
    int kind = (int)(b % 3), n = kind == 0 ? N_RANDOM
                                  : kind == 1 ? N_HAMMER : N_SCRIPT;
    uint32_t target = (uint32_t)below(r, ni);
    int64_t start = (int64_t)T0 + (int64_t)below(r, (DAYS - 1) * 86400);
    kinds[b] = kind;
    for (int k = 0; k < n; k++, e++) {
      g[e].user = user;
      g[e].item = kind == 0 ? (uint32_t)below(r, ni)
                  : kind == 1 ? target : script[k];
      g[e].ts = kind == 2 ? start + 30 * k
                          : (int64_t)T0 + (int64_t)below(r, DAYS * 86400);
      g[e].loc = (uint8_t)(kind == 2 ? 0 : below(r, NLOC));
      g[e].mood = (uint8_t)(kind == 2 ? 0 : below(r, NMOOD));
      g[e].dev = (uint8_t)(kind == 2 ? 1 : below(r, NDEV));
      g[e].rating = (uint8_t)(1 + below(r, 5));
    }
  }
  *ne = e;
  return 0;
}

int hr_gen_write(const char *dir, const hr_gen_opts_t *o, hr_error_t *err) {
  rng_t r = {o->seed * 0x2545F4914F6CDD1Dull + 7};
  size_t nu = o->users, ni = o->items, ne = o->events;
  user_t *users = calloc(nu ? nu : 1, sizeof(*users));
  gev_t *ev = malloc((ne ? ne : 1) * sizeof(*ev));
  int *icat = malloc((ni ? ni : 1) * sizeof(*icat));
  int *isty = malloc((ni ? ni : 1) * sizeof(*isty));
  double *ucum = malloc((nu ? nu : 1) * sizeof(*ucum));
  bucket_t bk[NCAT][NSTYLE];
  int *kinds = NULL;
  size_t nb = 0;
  int rc = 0;

  memset(bk, 0, sizeof(bk));
  if (nu < 1 || ni < NCAT * NSTYLE || ne < 1)
    rc = hr_error_set(err, HR_EINVAL, NULL, "need users >= 1, items >= %d, "
                      "events >= 1", NCAT * NSTYLE);
  else if (!users || !ev || !icat || !isty || !ucum)
    rc = hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
  else if (mkdir(dir, 0755) != 0 && errno != EEXIST)
    rc = hr_error_set(err, HR_EIO, NULL, "mkdir %s: %s", dir,
                      strerror(errno));
  if (rc != 0)
    goto done;

  /* Items: the first NCAT*NSTYLE cover every bucket, the rest are drawn. */
  for (size_t i = 0; i < ni; i++) {
    int c = i < NCAT * NSTYLE ? (int)(i % NCAT) : (int)below(&r, NCAT);
    int s = i < NCAT * NSTYLE ? (int)(i / NCAT) : (int)below(&r, NSTYLE);
    bucket_t *b = &bk[c][s];
    icat[i] = c;
    isty[i] = s;
    if (b->n % 64 == 0) {
      uint32_t *ni2 = realloc(b->items, (b->n + 64) * sizeof(*ni2));
      double *nc = ni2 ? realloc(b->cum, (b->n + 64) * sizeof(*nc)) : NULL;
      if (ni2)
        b->items = ni2;
      if (nc == NULL) {
        rc = hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
        goto done;
      }
      b->cum = nc;
    }
    /* Zipf-like popularity by position inside the bucket. */
    b->items[b->n] = (uint32_t)i;
    b->cum[b->n] = (b->n ? b->cum[b->n - 1] : 0) + 1.0 / pow(b->n + 1, 0.9);
    b->n++;
  }
  for (size_t u = 0; u < nu; u++) {
    user_t *p = &users[u];
    for (int c = 0; c < NCAT; c++) {
      p->taste[c] = 0.2 + unif(&r) * 0.3;
      p->style[c] = (int)below(&r, NSTYLE);
    }
    for (int k = 0; k < 3; k++)
      p->taste[below(&r, NCAT)] += 1.0 + 2.0 * unif(&r);
    p->tz = (int)below(&r, NTZ);
    p->mood_bias = (int)below(&r, NMOOD);
    p->kids = unif(&r) < 0.3;
    p->activity = 1.0 / pow((double)(u % 97) + 1.0, 0.5) + unif(&r);
    ucum[u] = (u ? ucum[u - 1] : 0) + p->activity;
  }
  for (size_t e = 0; e < ne; e++) {
    static const double hours[24] = {0.3, 0.1, 0.05, 0.05, 0.05, 0.2,
                                     1, 2.5, 2.5, 1.2, 1, 1,
                                     2, 1.5, 1, 1, 1.2, 2,
                                     2.5, 3, 3.5, 3, 2, 1};
    size_t u = pick_cum(&r, ucum, nu);
    const user_t *p = &users[u];
    int day = (int)below(&r, DAYS), hour = (int)pick(&r, hours, 24);
    int weekend = day % 7 >= 5, loc, mood, dev, c, s;
    bucket_t *b;

    context_of(&r, p, hour, weekend, &loc, &mood, &dev);
    c = category_of(&r, p, hour, weekend, loc, mood,
                    o->context_effect > 0 ? o->context_effect : 1.0);
    s = unif(&r) < 0.7 ? p->style[c] : (int)below(&r, NSTYLE);
    b = &bk[c][s];
    ev[e].item = b->items[pick_cum(&r, b->cum, b->n)];
    ev[e].user = (uint32_t)u;
    ev[e].ts = (int64_t)T0 + (int64_t)day * 86400 + hour * 3600 +
               (int64_t)below(&r, 3600) - tz_off[p->tz] * 3600;
    ev[e].loc = (uint8_t)loc;
    ev[e].mood = (uint8_t)mood;
    ev[e].dev = (uint8_t)dev;
    ev[e].rating = (uint8_t)(s == p->style[c] ? 3 + below(&r, 3)
                                              : 1 + below(&r, 3));
  }
  nb = (size_t)(o->bots * (double)nu + 0.5);
  if (nb > 0 && ((kinds = malloc(sizeof(int) * nb)) == NULL ||
                 make_bots(&r, o, nb, &ev, &ne, kinds) != 0)) {
    rc = hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
    goto done;
  }
  qsort(ev, ne, sizeof(*ev), cmp_gev);

  rc = write_files(dir, o, users, ev, ne, icat, isty, err);
  if (rc == 0 && nb > 0)
    rc = write_bots(dir, o, kinds, nb, err);
done:
  for (int c = 0; c < NCAT; c++)
    for (int s = 0; s < NSTYLE; s++) {
      free(bk[c][s].items);
      free(bk[c][s].cum);
    }
  free(users);
  free(ev);
  free(kinds);
  free(icat);
  free(isty);
  free(ucum);
  return rc;
}
