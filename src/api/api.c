/* api.c -- request validation and the error body (see api.h). */
#include "hr/api.h"
#include "hr/features.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int valid_text(const char *s, size_t len, size_t max) {
  if (len == 0 || len > max)
    return 0;
  for (size_t i = 0; i < len; i++)
    if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
      return 0;
  return 1;
}

/* Replaces the integer v (parent[key], or parent[index] when key is NULL)
 * by its decimal text; returns the new string, or NULL on OOM. */
static json_t *int_to_text(json_t *parent, const char *key, size_t index,
                           json_t *v) {
  char buf[32];
  snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
  v = json_string(buf);
  if (v == NULL)
    return NULL;
  if (key ? json_object_set_new(parent, key, v)
          : json_array_set_new(parent, index, v))
    return NULL;
  return v;
}

/* Turns a non-negative integer id into its string in place, then checks it.
 * `parent` is the object or array holding it (key or index). */
static int take_id(json_t *parent, const char *key, size_t index, json_t *v,
                   const char *path, const char **out, hr_error_t *err) {
  if (json_is_integer(v)) {
    if (json_integer_value(v) < 0)
      return hr_error_set(err, HR_EBADFIELD, path,
                          "%s must be a string or a non-negative integer",
                          path);
    if ((v = int_to_text(parent, key, index, v)) == NULL)
      return hr_error_set(err, HR_ENOMEM, path, "out of memory");
  }
  if (!json_is_string(v))
    return hr_error_set(err, HR_EBADFIELD, path,
                        "%s must be a string or a non-negative integer", path);
  if (!valid_text(json_string_value(v), json_string_length(v), HR_API_MAX_ID))
    return hr_error_set(err, HR_EBADFIELD, path,
                        "%s must be 1 to %d bytes without control characters",
                        path, HR_API_MAX_ID);
  *out = json_string_value(v);
  return 0;
}

static int check_unknown(json_t *obj, const char *const *known,
                         const char *prefix, const hr_config_t *cfg,
                         hr_error_t *err) {
  const char *k;
  json_t *v;
  char path[160];

  if (strcmp(cfg->http.unknown_fields, "ignore") == 0)
    return 0;
  json_object_foreach(obj, k, v) {
    int ok = 0;
    for (const char *const *p = known; *p; p++)
      if (strcmp(*p, k) == 0)
        ok = 1;
    if (!ok) {
      snprintf(path, sizeof(path), "%s%s%.100s", prefix, *prefix ? "." : "", k);
      return hr_error_set(err, HR_EUNKNOWNFIELD, path,
                          "unknown field \"%.100s\"", path);
    }
  }
  return 0;
}

static int parse_ts(json_t *v, const char *path, long long now, long long *out,
                    hr_error_t *err) {
  if (!json_is_integer(v))
    return hr_error_set(err, HR_EBADFIELD, path,
                        "%s must be an integer (unix seconds)", path);
  long long t = json_integer_value(v);
  if (t < HR_API_TS_MIN || t > now + 86400)
    return hr_error_set(err, HR_ERANGE, path,
                        "%s must be between %lld (2000-01-01) and one day "
                        "ahead of the server clock (%lld)",
                        path, HR_API_TS_MIN, now + 86400);
  *out = t;
  return 0;
}

/* An object of at most max entries at `field` (400 otherwise). */
static int bounded_object(json_t *obj, const char *field, size_t max,
                          const char *shape, hr_error_t *err) {
  if (!json_is_object(obj))
    return hr_error_set(err, HR_EBADFIELD, field, "%s must be an object of %s",
                        field, shape);
  if (json_object_size(obj) > max)
    return hr_error_set(err, HR_ETOOMANY, field,
                        "%s has %zu entries; at most %zu", field,
                        json_object_size(obj), max);
  return 0;
}

/* context.extra: {name: "value"}, names as hr_api_ctx_extra_name allows,
 * values 1 to HR_API_MAX_CTX_VALUE bytes. */
static int parse_ctx_extra(json_t *obj, hr_recommend_req_t *out,
                           hr_error_t *err) {
  const char *key;
  json_t *v;
  char path[96];
  int rc;

  if ((rc = bounded_object(obj, "context.extra", HR_API_MAX_CTX_EXTRA,
                           "name: value", err)))
    return rc;
  json_object_foreach(obj, key, v) {
    snprintf(path, sizeof(path), "context.extra.%.64s", key);
    if (!hr_api_ctx_extra_name(key))
      return hr_error_set(err, HR_EBADFIELD, path,
                          "context.extra names are 1 to %d characters of "
                          "a-z, 0-9 and _, other than tz, location, mood, "
                          "device, ts and extra",
                          HR_MODEL_MAX_ATTR_NAME);
    if (json_is_null(v))
      continue;
    if (!json_is_string(v) ||
        !valid_text(json_string_value(v), json_string_length(v),
                    HR_API_MAX_CTX_VALUE))
      return hr_error_set(err, HR_EBADFIELD, path,
                          "%s must be a string of 1 to %d bytes without "
                          "control characters",
                          path, HR_API_MAX_CTX_VALUE);
    out->ctx_extra_name[out->n_ctx_extra] = key;
    out->ctx_extra_val[out->n_ctx_extra++] = json_string_value(v);
  }
  return 0;
}

int hr_api_ctx_extra_name(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > HR_MODEL_MAX_ATTR_NAME || strncmp(s, "user.", 5) == 0)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
          s[i] == '_'))
      return 0;
  for (int k = 0; k < HR_CTX_FIELDS; k++) /* the named fields */
    if (strcmp(s, hr_ctx_field_names[k]) == 0)
      return 0;
  return strcmp(s, "ts") != 0 && strcmp(s, "extra") != 0;
}

/* A context object: tz, location, mood, device (+ ts and extra, parsed
 * apart, when allow_ts: the /recommend one). */
static int parse_context(json_t *obj, const char *prefix, int allow_ts,
                         const hr_config_t *cfg, long long now,
                         const char *ctx[HR_CTX_FIELDS], long long *ts,
                         hr_error_t *err) {
  static const char *const known_ts[] = {"tz", "location", "mood", "device",
                                         "ts", "extra", NULL};
  static const char *const known[] = {"tz", "location", "mood", "device", NULL};
  char path[160];
  int rc;

  if (!json_is_object(obj))
    return hr_error_set(err, HR_EBADFIELD, prefix, "%s must be an object",
                        prefix);
  if ((rc = check_unknown(obj, allow_ts ? known_ts : known, prefix, cfg, err)))
    return rc;
  for (int i = 0; i < HR_CTX_FIELDS; i++) {
    json_t *v = json_object_get(obj, hr_ctx_field_names[i]);
    snprintf(path, sizeof(path), "%s.%s", prefix, hr_ctx_field_names[i]);
    if (v == NULL || json_is_null(v))
      continue;
    if (!json_is_string(v) ||
        !valid_text(json_string_value(v), json_string_length(v),
                    HR_API_MAX_CTX_VALUE))
      return hr_error_set(err, HR_EBADFIELD, path,
                          "%s must be a string of 1 to %d bytes without "
                          "control characters",
                          path, HR_API_MAX_CTX_VALUE);
    if (i == 0 && !hr_tz_valid(json_string_value(v)))
      return hr_error_set(err, HR_EBADFIELD, path,
                          "%s: unknown time zone \"%s\" (use an IANA name "
                          "such as Europe/Paris, or UTC+HH:MM)",
                          path, json_string_value(v));
    ctx[i] = json_string_value(v);
  }
  if (allow_ts) {
    json_t *v = json_object_get(obj, "ts");
    snprintf(path, sizeof(path), "%s.ts", prefix);
    if (v != NULL && !json_is_null(v) && (rc = parse_ts(v, path, now, ts, err)))
      return rc;
  }
  return 0;
}

static json_t *load(const char *body, size_t len, hr_error_t *err) {
  json_error_t jerr;
  json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);

  if (root == NULL) {
    hr_error_set(err, HR_EBADJSON, "", "invalid JSON at line %d column %d: %s",
                 jerr.line, jerr.column, jerr.text);
    return NULL;
  }
  if (!json_is_object(root)) {
    json_decref(root);
    hr_error_set(err, HR_EBADJSON, "", "the body must be a JSON object");
    return NULL;
  }
  return root;
}

/* An optional boolean field into *out (left as it is when absent or
 * null): 0, or HR_EBADFIELD naming it. */
static int opt_bool(json_t *root, const char *name, int *out,
                    hr_error_t *err) {
  json_t *v = json_object_get(root, name);
  if (v == NULL || json_is_null(v))
    return 0;
  if (!json_is_boolean(v))
    return hr_error_set(err, HR_EBADFIELD, name, "%s must be true or false",
                        name);
  *out = json_is_true(v);
  return 0;
}

static int parse_id_list(json_t *root, const char *name, size_t max,
                         const char ***out, size_t *n, hr_error_t *err) {
  json_t *arr = json_object_get(root, name);
  char path[64];
  size_t i;
  json_t *v;

  *out = NULL;
  *n = 0;
  if (arr == NULL || json_is_null(arr))
    return 0;
  if (!json_is_array(arr))
    return hr_error_set(err, HR_EBADFIELD, name,
                        "%s must be an array of item ids", name);
  if (json_array_size(arr) > max)
    return hr_error_set(err, HR_ETOOMANY, name, "%s has %zu items; at most %zu",
                        name, json_array_size(arr), max);
  if (json_array_size(arr) == 0)
    return 0;
  *out = calloc(json_array_size(arr), sizeof(char *));
  if (*out == NULL)
    return hr_error_set(err, HR_ENOMEM, name, "out of memory");
  json_array_foreach(arr, i, v) {
    int rc;
    snprintf(path, sizeof(path), "%s[%zu]", name, i);
    if ((rc = take_id(arr, NULL, i, v, path, &(*out)[i], err))) {
      free(*out);
      *out = NULL;
      return rc;
    }
  }
  *n = json_array_size(arr);
  return 0;
}

/* One filter value: a string (or an integer, normalised to its decimal
 * text) of 1 to HR_MODEL_MAX_ATTR_VALUE bytes, without control characters
 * or '|' (which separates the values of one cell in items.tsv). */
static int take_filter_value(json_t *parent, const char *key, size_t index,
                             json_t *v, const char *path, const char **out,
                             hr_error_t *err) {
  if (json_is_integer(v)) {
    if ((v = int_to_text(parent, key, index, v)) == NULL)
      return hr_error_set(err, HR_ENOMEM, path, "out of memory");
  }
  if (!json_is_string(v) ||
      !valid_text(json_string_value(v), json_string_length(v),
                  HR_MODEL_MAX_ATTR_VALUE) ||
      strchr(json_string_value(v), '|') != NULL)
    return hr_error_set(err, HR_EBADFIELD, path,
                        "%s must be a string of 1 to %d bytes without control "
                        "characters or '|', or an integer",
                        path, HR_MODEL_MAX_ATTR_VALUE);
  *out = json_string_value(v);
  return 0;
}

/* "filters": {"attr": value | [value, ...], ...} */
static int parse_filters(json_t *obj, hr_recommend_req_t *out,
                         hr_error_t *err) {
  size_t n = json_object_size(obj), total = 0, t = 0, w = 0;
  const char *key;
  const char **vals;
  json_t *v;
  char path[128];

  if (!json_is_object(obj))
    return hr_error_set(err, HR_EBADFIELD, "filters",
                        "filters must be an object of attribute: value or "
                        "attribute: [values]");
  if (n > HR_API_MAX_FILTERS)
    return hr_error_set(err, HR_ETOOMANY, "filters",
                        "filters has %zu attributes; at most %d", n,
                        HR_API_MAX_FILTERS);
  if (n == 0)
    return 0;
  json_object_foreach(obj, key, v) {
    snprintf(path, sizeof(path), "filters.%.64s", key);
    if (!valid_text(key, strlen(key), HR_MODEL_MAX_ATTR_NAME))
      return hr_error_set(err, HR_EBADFIELD, "filters",
                          "filter attribute names must be 1 to %d bytes "
                          "without control characters",
                          HR_MODEL_MAX_ATTR_NAME);
    if (json_is_array(v)) {
      if (json_array_size(v) == 0)
        return hr_error_set(err, HR_EBADFIELD, path,
                            "%s is an empty list, which no item matches; "
                            "leave the attribute out instead", path);
      if (json_array_size(v) > HR_API_MAX_FILTER_VALUES)
        return hr_error_set(err, HR_ETOOMANY, path,
                            "%s has %zu values; at most %d", path,
                            json_array_size(v), HR_API_MAX_FILTER_VALUES);
      total += json_array_size(v);
    } else {
      total++;
    }
  }
  out->filters = calloc(n, sizeof(*out->filters));
  vals = calloc(total, sizeof(*vals));
  if (out->filters == NULL || vals == NULL) {
    free(vals);
    return hr_error_set(err, HR_ENOMEM, "filters", "out of memory");
  }
  out->n_filters = n;
  out->filters[0].values = vals; /* owns the array: freed with the request */
  json_object_foreach(obj, key, v) {
    int rc;
    out->filters[t].attr = key;
    out->filters[t].values = vals + w;
    if (json_is_array(v)) {
      size_t i;
      json_t *x;
      json_array_foreach(v, i, x) {
        snprintf(path, sizeof(path), "filters.%.64s[%zu]", key, i);
        if ((rc = take_filter_value(v, NULL, i, x, path, &vals[w++], err)))
          return rc;
      }
      out->filters[t].n_values = json_array_size(v);
    } else {
      snprintf(path, sizeof(path), "filters.%.64s", key);
      if ((rc = take_filter_value(obj, key, 0, v, path, &vals[w++], err)))
        return rc;
      out->filters[t].n_values = 1;
    }
    t++;
  }
  return 0;
}

/* user_attrs: {name: "value" | integer}; at most HR_API_MAX_USER_ATTRS,
 * names of 1 to HR_MODEL_MAX_ATTR_NAME - 5 bytes, values of 1 to
 * HR_API_MAX_CTX_VALUE bytes. */
static int parse_user_attrs(json_t *obj, hr_recommend_req_t *out,
                            hr_error_t *err) {
  const char *key;
  json_t *v;
  char path[96];
  int rc;

  if ((rc = bounded_object(obj, "user_attrs", HR_API_MAX_USER_ATTRS,
                           "attribute: value", err)))
    return rc;
  json_object_foreach(obj, key, v) {
    size_t k = out->n_uattr;
    char *nm = out->uattr_buf[k];
    snprintf(path, sizeof(path), "user_attrs.%.64s", key);
    if (!valid_text(key, strlen(key), HR_MODEL_MAX_ATTR_NAME - 5))
      return hr_error_set(err, HR_EBADFIELD, path,
                          "user_attrs names must be 1 to %d bytes without "
                          "control characters",
                          HR_MODEL_MAX_ATTR_NAME - 5);
    if (json_is_null(v))
      continue;
    snprintf(nm, sizeof(out->uattr_buf[k]), "user.%s", key);
    if (json_is_integer(v) && strcmp(key, "age") == 0) {
      if (json_integer_value(v) < 0 || json_integer_value(v) > 200)
        return hr_error_set(err, HR_ERANGE, path,
                            "%s must be from 0 to 200", path);
      out->uattr_val[k] = hr_age_group((long long)json_integer_value(v));
    } else if (json_is_string(v) &&
               valid_text(json_string_value(v), json_string_length(v),
                          HR_API_MAX_CTX_VALUE)) {
      const char *sv = json_string_value(v);
      size_t dl = strspn(sv, "0123456789");
      /* "31" as the trainer reads it from a CSV: its age group */
      out->uattr_val[k] = strcmp(key, "age") == 0 && dl > 0 && dl <= 3 &&
                                  sv[dl] == '\0'
                              ? hr_age_group(atoll(sv))
                              : sv;
    } else
      return hr_error_set(err, HR_EBADFIELD, path,
                          "%s must be a string of 1 to %d bytes without "
                          "control characters%s",
                          path, HR_API_MAX_CTX_VALUE,
                          strcmp(key, "age") == 0 ? ", or an integer" : "");
    out->uattr_name[k] = nm;
    out->n_uattr++;
  }
  return 0;
}

/* A request body's object into a cleared `out` (k and ts at their
 * defaults), checked against the fields it may have: 0, or the error
 * (nothing to destroy then). */
static int begin(const char *body, size_t len, const hr_config_t *cfg,
                 const char *const *known, hr_recommend_req_t *out,
                 json_t **root, hr_error_t *err) {
  int rc;
  memset(out, 0, sizeof(*out));
  out->ts = -1;
  out->k = cfg->recommend.default_k;
  if ((*root = load(body, len, err)) == NULL)
    return err ? err->code : HR_EBADJSON;
  out->_root = *root;
  if ((rc = check_unknown(*root, known, "", cfg, err))) {
    hr_recommend_req_destroy(out);
    return rc;
  }
  return 0;
}

/* What /recommend and /popular share after their own fields: context
 * (with extra), filters and user_attrs, in that order. */
static int parse_context_tail(json_t *root, const hr_config_t *cfg,
                              long long now, hr_recommend_req_t *out,
                              hr_error_t *err) {
  json_t *v = json_object_get(root, "context");
  int rc;
  if (v != NULL && !json_is_null(v) &&
      (rc = parse_context(v, "context", 1, cfg, now, out->ctx, &out->ts, err)))
    return rc;
  if (v != NULL && json_is_object(v) &&
      (v = json_object_get(v, "extra")) != NULL && !json_is_null(v) &&
      (rc = parse_ctx_extra(v, out, err)))
    return rc;
  v = json_object_get(root, "filters");
  if (v != NULL && !json_is_null(v) && (rc = parse_filters(v, out, err)))
    return rc;
  v = json_object_get(root, "user_attrs");
  if (v != NULL && !json_is_null(v) && (rc = parse_user_attrs(v, out, err)))
    return rc;
  return 0;
}

/* k: an integer from 1 to recommend.max_k (absent or null: the default). */
static int parse_k(json_t *root, const hr_config_t *cfg, int *k,
                   hr_error_t *err) {
  json_t *v = json_object_get(root, "k");
  if (v == NULL || json_is_null(v))
    return 0;
  if (!json_is_integer(v))
    return hr_error_set(err, HR_EBADFIELD, "k",
                        "k must be an integer from 1 to %d",
                        cfg->recommend.max_k);
  if (json_integer_value(v) < 1 ||
      json_integer_value(v) > cfg->recommend.max_k)
    return hr_error_set(err, HR_ERANGE, "k",
                        "k must be an integer from 1 to %d",
                        cfg->recommend.max_k);
  *k = (int)json_integer_value(v);
  return 0;
}

int hr_api_parse_recommend(const char *body, size_t len, const hr_config_t *cfg,
                           long long now, hr_recommend_req_t *out,
                           hr_error_t *err) {
  static const char *const known[] = {"user_id", "history", "k", "context",
                                      "exclude", "explain", "filters",
                                      "user_attrs", "session_id", NULL};
  json_t *root, *v;
  int rc;

  if ((rc = begin(body, len, cfg, known, out, &root, err)))
    return rc;
  v = json_object_get(root, "user_id");
  if (v != NULL && !json_is_null(v) &&
      (rc = take_id(root, "user_id", 0, v, "user_id", &out->user_id, err)))
    goto fail;
  v = json_object_get(root, "session_id");
  if (v != NULL && !json_is_null(v) &&
      (rc = take_id(root, "session_id", 0, v, "session_id", &out->session_id,
                    err)))
    goto fail;
  if ((rc = parse_id_list(root, "history", (size_t)cfg->recommend.max_history,
                          &out->history, &out->n_history, err)))
    goto fail;
  if ((rc = parse_id_list(root, "exclude", (size_t)cfg->recommend.max_exclude,
                          &out->exclude, &out->n_exclude, err)))
    goto fail;
  v = json_object_get(root, "history");
  if (out->user_id == NULL && (v == NULL || json_is_null(v))) {
    rc = hr_error_set(err, HR_EMISSING, "user_id",
                      "user_id is required (or history, for an anonymous "
                      "request)");
    goto fail;
  }
  if ((rc = parse_k(root, cfg, &out->k, err)))
    goto fail;
  if ((rc = opt_bool(root, "explain", &out->explain, err)) ||
      (rc = parse_context_tail(root, cfg, now, out, err)))
    goto fail;
  return 0;
fail:
  hr_recommend_req_destroy(out);
  return rc;
}

int hr_api_parse_popular(const char *body, size_t len, const hr_config_t *cfg,
                         long long now, hr_recommend_req_t *out,
                         hr_error_t *err) {
  static const char *const known[] = {"k", "context", "exclude", "filters",
                                      "user_attrs", "trending", NULL};
  json_t *root, *v;
  int rc;

  if ((rc = begin(body, len, cfg, known, out, &root, err)))
    return rc;
  if ((rc = opt_bool(root, "trending", &out->trending, err)))
    goto fail;
  for (int i = 0; out->trending && i < 2; i++) {
    const char *f = i == 0 ? "context" : "user_attrs";
    v = json_object_get(root, f);
    if (v != NULL && !json_is_null(v)) {
      rc = hr_error_set(err, HR_EBADFIELD, f, "a trending list is the same "
                        "in every context and for every user: send %s or "
                        "trending, not both", f);
      goto fail;
    }
  }
  if ((rc = parse_id_list(root, "exclude", (size_t)cfg->recommend.max_exclude,
                          &out->exclude, &out->n_exclude, err)) ||
      (rc = parse_k(root, cfg, &out->k, err)) ||
      (rc = parse_context_tail(root, cfg, now, out, err)))
    goto fail;
  return 0;
fail:
  hr_recommend_req_destroy(out);
  return rc;
}

int hr_api_parse_similar(const char *body, size_t len, const hr_config_t *cfg,
                         long long now, hr_recommend_req_t *out,
                         hr_error_t *err) {
  static const char *const known[] = {"item_id", "user_id", "k", "exclude",
                                      "filters", NULL};
  json_t *root, *v;
  int rc;

  (void)now; /* no time field: the signature of the other list parsers */
  if ((rc = begin(body, len, cfg, known, out, &root, err)))
    return rc;
  v = json_object_get(root, "item_id");
  if (v == NULL || json_is_null(v)) {
    rc = hr_error_set(err, HR_EMISSING, "item_id", "item_id is required");
    goto fail;
  }
  if ((rc = take_id(root, "item_id", 0, v, "item_id", &out->item_id, err)))
    goto fail;
  v = json_object_get(root, "user_id");
  if (v != NULL && !json_is_null(v) &&
      (rc = take_id(root, "user_id", 0, v, "user_id", &out->user_id, err)))
    goto fail;
  if ((rc = parse_k(root, cfg, &out->k, err)) ||
      (rc = parse_id_list(root, "exclude", (size_t)cfg->recommend.max_exclude,
                          &out->exclude, &out->n_exclude, err)))
    goto fail;
  v = json_object_get(root, "filters");
  if (v != NULL && !json_is_null(v) && (rc = parse_filters(v, out, err)))
    goto fail;
  return 0;
fail:
  hr_recommend_req_destroy(out);
  return rc;
}

void hr_recommend_req_destroy(hr_recommend_req_t *r) {
  free(r->history);
  free(r->exclude);
  if (r->filters != NULL)
    free((void *)r->filters[0].values);
  free(r->filters);
  json_decref(r->_root);
  memset(r, 0, sizeof(*r));
}

static const char *const event_types[] = {"view", "click", "purchase",
                                          "rating", "context", NULL};

static int parse_event(json_t *obj, const char *prefix, const hr_config_t *cfg,
                       long long now, hr_event_t *e, hr_error_t *err) {
  static const char *const known[] = {"user_id", "item_id", "type", "value",
                                      "ts", "context", "recommendation_id",
                                      "event_id", NULL};
  char path[96];
  json_t *v;
  int rc, is_ctx = 0;

#define P(name) (snprintf(path, sizeof(path), "%s%s" name, prefix, *prefix ? "." : ""), path)
  memset(e, 0, sizeof(*e));
  e->ts = now;
  if (!json_is_object(obj))
    return hr_error_set(err, HR_EBADFIELD, prefix, "%s must be an object",
                        prefix);
  if ((rc = check_unknown(obj, known, prefix, cfg, err)))
    return rc;
  v = json_object_get(obj, "user_id");
  if (v == NULL || json_is_null(v))
    return hr_error_set(err, HR_EMISSING, P("user_id"), "%s is required", path);
  if ((rc = take_id(obj, "user_id", 0, v, P("user_id"), &e->user_id, err)))
    return rc;
  v = json_object_get(obj, "type");
  if (v == NULL || json_is_null(v))
    return hr_error_set(err, HR_EMISSING, P("type"), "%s is required", path);
  for (int i = 0; json_is_string(v) && event_types[i]; i++)
    if (strcmp(json_string_value(v), event_types[i]) == 0)
      e->type = event_types[i];
  if (e->type == NULL)
    return hr_error_set(err, HR_EBADFIELD, P("type"),
                        "%s must be one of view, click, purchase, rating, "
                        "context", path);
  is_ctx = strcmp(e->type, "context") == 0;
  v = json_object_get(obj, "item_id");
  if (v != NULL && !json_is_null(v)) {
    if ((rc = take_id(obj, "item_id", 0, v, P("item_id"), &e->item_id, err)))
      return rc;
  } else if (!is_ctx) {
    return hr_error_set(err, HR_EMISSING, P("item_id"),
                        "%s is required for a %s event", path, e->type);
  }
  v = json_object_get(obj, "value");
  if (v != NULL && !json_is_null(v)) {
    if (!json_is_number(v))
      return hr_error_set(err, HR_EBADFIELD, P("value"), "%s must be a number",
                          path);
    e->value = json_number_value(v);
    if (!isfinite(e->value) || fabs(e->value) > 1e9)
      return hr_error_set(err, HR_ERANGE, P("value"),
                          "%s must be finite and within +-1e9", path);
    e->has_value = 1;
  }
  v = json_object_get(obj, "ts");
  if (v != NULL && !json_is_null(v) && (rc = parse_ts(v, P("ts"), now, &e->ts, err)))
    return rc;
  v = json_object_get(obj, "context");
  if (v != NULL && !json_is_null(v)) {
    if ((rc = parse_context(v, P("context"), 0, cfg, now, e->ctx, NULL, err)))
      return rc;
  }
  if (is_ctx) {
    int any = 0;
    for (int i = 0; i < HR_CTX_FIELDS; i++)
      any |= e->ctx[i] != NULL;
    if (!any)
      return hr_error_set(err, HR_EMISSING, P("context"),
                          "%s with at least one of tz, location, mood, device "
                          "is required for a context event", path);
  }
  v = json_object_get(obj, "recommendation_id");
  if (v != NULL && !json_is_null(v)) {
    if (!json_is_string(v) ||
        !valid_text(json_string_value(v), json_string_length(v), HR_API_MAX_ID))
      return hr_error_set(err, HR_EBADFIELD, P("recommendation_id"),
                          "%s must be a string of 1 to %d bytes", path,
                          HR_API_MAX_ID);
    e->recommendation_id = json_string_value(v);
  }
  v = json_object_get(obj, "event_id");
  if (v != NULL && !json_is_null(v)) {
    if (!json_is_string(v) ||
        !valid_text(json_string_value(v), json_string_length(v), HR_API_MAX_ID))
      return hr_error_set(err, HR_EBADFIELD, P("event_id"),
                          "%s must be a string of 1 to %d bytes", path,
                          HR_API_MAX_ID);
    e->event_id = json_string_value(v);
  }
#undef P
  return 0;
}

int hr_api_parse_events(const char *body, size_t len, const hr_config_t *cfg,
                        long long now, hr_event_req_t *out, hr_error_t *err) {
  static const char *const known_batch[] = {"events", NULL};
  json_t *root, *arr;
  int rc;

  memset(out, 0, sizeof(*out));
  if ((root = load(body, len, err)) == NULL)
    return err ? err->code : HR_EBADJSON;
  out->_root = root;
  arr = json_object_get(root, "events");
  if (arr != NULL) {
    char path[32];
    size_t i;
    json_t *v;

    out->batch = 1;
    if ((rc = check_unknown(root, known_batch, "", cfg, err)))
      goto fail;
    if (!json_is_array(arr)) {
      rc = hr_error_set(err, HR_EBADFIELD, "events", "events must be an array");
      goto fail;
    }
    if (json_array_size(arr) == 0) {
      rc = hr_error_set(err, HR_EBADFIELD, "events", "events must not be empty");
      goto fail;
    }
    if (json_array_size(arr) > (size_t)cfg->event.max_batch) {
      rc = hr_error_set(err, HR_ETOOMANY, "events",
                        "a batch holds at most %d events, this one has %zu",
                        cfg->event.max_batch, json_array_size(arr));
      goto fail;
    }
    out->events = calloc(json_array_size(arr), sizeof(hr_event_t));
    if (out->events == NULL) {
      rc = hr_error_set(err, HR_ENOMEM, "", "out of memory");
      goto fail;
    }
    json_array_foreach(arr, i, v) {
      snprintf(path, sizeof(path), "events[%zu]", i);
      if ((rc = parse_event(v, path, cfg, now, &out->events[i], err)))
        goto fail;
    }
    out->n = json_array_size(arr);
    return 0;
  }
  out->events = calloc(1, sizeof(hr_event_t));
  if (out->events == NULL) {
    rc = hr_error_set(err, HR_ENOMEM, "", "out of memory");
    goto fail;
  }
  if ((rc = parse_event(root, "", cfg, now, &out->events[0], err)))
    goto fail;
  out->n = 1;
  return 0;
fail:
  hr_event_req_destroy(out);
  return rc;
}

void hr_event_req_destroy(hr_event_req_t *r) {
  free(r->events);
  json_decref(r->_root);
  memset(r, 0, sizeof(*r));
}

char *hr_api_error_body(const hr_error_t *err) {
  json_t *o = json_pack(
      "{s:{s:s,s:s,s:s}}", "error", "code", hr_err_api_code(err->code),
      "message", err->msg[0] ? err->msg : hr_strerror(err->code), "field",
      err->field);
  char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
  json_decref(o);
  if (s == NULL) /* never answer an error with an empty body */
    s = strdup("{\"error\":{\"code\":\"internal\",\"message\":\"the error "
               "could not be encoded\",\"field\":\"\"}}");
  return s;
}

int hr_api_parse_item_update(const char *path_id, const char *body, size_t len,
                             const hr_config_t *cfg, int *hidden,
                             hr_error_t *err) {
  static const char *const known[] = {"hidden", NULL};
  json_t *root, *v;
  int rc = 0;

  if (!valid_text(path_id, strlen(path_id), HR_API_MAX_ID))
    return hr_error_set(err, HR_EBADFIELD, "item_id", "the item id in the "
                        "path must be 1 to %d bytes without control "
                        "characters", HR_API_MAX_ID);
  if ((root = load(body, len, err)) == NULL)
    return err->code;
  if ((rc = check_unknown(root, known, "", cfg, err)) != 0)
    goto done;
  v = json_object_get(root, "hidden");
  if (v == NULL)
    rc = hr_error_set(err, HR_EMISSING, "hidden", "hidden is required "
                      "(true or false)");
  else if (json_is_null(v)) /* not "absent": a value that is not a boolean */
    rc = hr_error_set(err, HR_EBADFIELD, "hidden", "hidden must be true or "
                      "false");
  else
    rc = opt_bool(root, "hidden", hidden, err);
done:
  json_decref(root);
  return rc;
}
