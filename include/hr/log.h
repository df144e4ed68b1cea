/* log.h -- structured logs: one JSON object per line on stderr.
 *
 * Every line has "ts" (RFC 3339 UTC, milliseconds), "level" and "event";
 * callers add their own members as a jansson object. A line is written with
 * one write(2), so lines from several threads never interleave. Thread-safe.
 * The level threshold is process-wide and may change at run time (SIGHUP). */
#ifndef HR_LOG_H
#define HR_LOG_H

#include <jansson.h>

typedef enum { HR_LOG_DEBUG = 0, HR_LOG_INFO, HR_LOG_WARN, HR_LOG_ERROR } hr_log_level_t;

/** Set the minimum level written. */
void hr_log_set_level(hr_log_level_t level);
/** Parse "debug|info|warn|error"; returns 0 or HR_EINVAL. */
int hr_log_parse_level(const char *s, hr_log_level_t *out);

/** Write one line. `fields` (may be NULL) is an object whose members are
 *  added to the line; it is taken (decref'd) even when the line is filtered. */
void hr_log(hr_log_level_t level, const char *event, json_t *fields);

/** Shorthand: a line with a "msg" member built printf-style. */
void hr_logf(hr_log_level_t level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
