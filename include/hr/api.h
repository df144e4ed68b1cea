/* api.h -- JSON request codecs and the error body.
 *
 * Parses and fully validates request bodies into C structs before any other
 * module sees them: a request that passes here is safe to act on, and one
 * that fails writes nothing anywhere. Errors name the offending field by its
 * JSON path (`events[2].item_id`). Parsed structs borrow their strings from
 * the JSON tree they keep (`_root`); release them with the _destroy
 * function. Integer ids are normalised to their decimal strings. Pure
 * functions of their input and the config: thread-safe. */
#ifndef HR_API_H
#define HR_API_H

#include <stddef.h>

#include <jansson.h>

#include "hr/config.h"
#include "hr/ctxstore.h"
#include "hr/err.h"
#include "hr/model.h"

#define HR_API_MAX_ID 128      /* bytes in a user/item/event id */
#define HR_API_MAX_CTX_VALUE 64
#define HR_API_MAX_USER_ATTRS 16 /* entries of user_attrs */
#define HR_API_MAX_CTX_EXTRA 12  /* entries of context.extra */
#define HR_API_MAX_FILTERS 16   /* attributes in "filters" */
#define HR_API_MAX_FILTER_VALUES 256 /* values for one attribute */
#define HR_API_TS_MIN 946684800LL /* 2000-01-01T00:00:00Z */

typedef struct {
  const char *item_id;                 /* POST /similar: the anchor item */
  const char *user_id;                 /* NULL: anonymous */
  const char *session_id;              /* NULL: none; assigns anonymous
                                          requests to an experiment */
  const char **history;                /* newest first */
  size_t n_history;
  const char **exclude;
  size_t n_exclude;
  hr_filter_term_t *filters;           /* AND of terms; values are ORed */
  size_t n_filters;
  int k;
  int explain;
  const char *ctx[HR_CTX_FIELDS];      /* overrides, NULL = none */
  /* context.extra: the data's other context columns (companion, weather,
   * ...), by name; values point into the request's JSON */
  size_t n_ctx_extra;
  const char *ctx_extra_name[HR_API_MAX_CTX_EXTRA];
  const char *ctx_extra_val[HR_API_MAX_CTX_EXTRA];
  /* user_attrs: what the caller knows of the user (age, gender, ...), for
   * the prior of a user the model knows nothing about; names as the model
   * has them ("user.<attribute>"), values as strings (an integer age is
   * already its group, hr_age_group) */
  size_t n_uattr;
  const char *uattr_name[HR_API_MAX_USER_ATTRS];
  const char *uattr_val[HR_API_MAX_USER_ATTRS];
  char uattr_buf[HR_API_MAX_USER_ATTRS][HR_MODEL_MAX_ATTR_NAME + 8];
  long long ts;                        /* -1: now */
  int trending;                        /* POST /popular: by recent events */
  json_t *_root;
} hr_recommend_req_t;

typedef struct {
  hr_event_t *events;
  size_t n;
  int batch;                           /* body was {"events": [...]} */
  json_t *_root;
} hr_event_req_t;

/** 1 when s may name a context.extra entry: 1 to HR_MODEL_MAX_ATTR_NAME
 *  characters of a-z, 0-9 and _, and not tz, location, mood, device, ts or
 *  extra. The trainer gives context features only to the columns a
 *  request can name. */
int hr_api_ctx_extra_name(const char *s);

/** Parse POST /recommend. `now` bounds `context.ts`. Returns 0, or
 *  HR_EBADJSON / HR_EBADFIELD / HR_EMISSING / HR_EUNKNOWNFIELD / HR_ERANGE /
 *  HR_ETOOMANY / HR_ENOMEM with err->field set. On error nothing needs
 *  destroying. */
int hr_api_parse_recommend(const char *body, size_t len, const hr_config_t *cfg,
                           long long now, hr_recommend_req_t *out,
                           hr_error_t *err);
void hr_recommend_req_destroy(hr_recommend_req_t *r);
/** Parse POST /popular: k, context (with extra), exclude, filters and
 *  user_attrs, as /recommend has them, and trending (a boolean; with it,
 *  context and user_attrs are refused: the trending list is the same in
 *  every context). Same errors and release. */
int hr_api_parse_popular(const char *body, size_t len, const hr_config_t *cfg,
                         long long now, hr_recommend_req_t *out,
                         hr_error_t *err);
/** Parse POST /similar: item_id (required), user_id, k, exclude, filters
 *  into the fields of the same name (the others stay empty; `now` is
 *  unused). Same errors and release as hr_api_parse_recommend. */
int hr_api_parse_similar(const char *body, size_t len, const hr_config_t *cfg,
                         long long now, hr_recommend_req_t *out,
                         hr_error_t *err);

/** Parse PUT /items/<id>: the id from the path (checked as a body's ids
 *  are) and the body {"hidden": true|false} into *hidden. Same errors. */
int hr_api_parse_item_update(const char *path_id, const char *body, size_t len,
                             const hr_config_t *cfg, int *hidden,
                             hr_error_t *err);

/** Parse POST /event (one event or {"events":[...]}). Events without `ts`
 *  get `now`. Same error codes as above. */
int hr_api_parse_events(const char *body, size_t len, const hr_config_t *cfg,
                        long long now, hr_event_req_t *out, hr_error_t *err);
void hr_event_req_destroy(hr_event_req_t *r);

/** {"error":{"code","message","field"}} for `err` (new string, free()).
 *  Falls back to the table's message when err->msg is empty. */
char *hr_api_error_body(const hr_error_t *err);

#endif
