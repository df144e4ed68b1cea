/* log.c -- JSON-lines logger (see log.h). */
#include "hr/log.h"
#include "hr/err.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int min_level = HR_LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void hr_log_set_level(hr_log_level_t level) { atomic_store(&min_level, (int)level); }

int hr_log_parse_level(const char *s, hr_log_level_t *out) {
  for (int i = 0; i < 4; i++) {
    if (strcmp(s, level_names[i]) == 0) {
      *out = (hr_log_level_t)i;
      return 0;
    }
  }
  return HR_EINVAL;
}

void hr_log(hr_log_level_t level, const char *event, json_t *fields) {
  json_t *line;
  char ts[64];
  struct timespec now;
  struct tm tm;
  char *text;

  if ((int)level < atomic_load(&min_level)) {
    json_decref(fields);
    return;
  }
  clock_gettime(CLOCK_REALTIME, &now);
  gmtime_r(&now.tv_sec, &tm);
  snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
           tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
           tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000);
  line = json_object();
  if (line == NULL) {
    json_decref(fields);
    return;
  }
  json_object_set_new(line, "ts", json_string(ts));
  json_object_set_new(line, "level", json_string(level_names[level]));
  json_object_set_new(line, "event", json_string(event));
  if (fields != NULL && json_is_object(fields))
    json_object_update(line, fields);
  json_decref(fields);
  text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(line);
  if (text == NULL)
    return;
  size_t n = strlen(text);
  text[n] = '\n'; /* json_dumps allocates n+1 bytes: reuse the NUL slot */
  ssize_t w = write(STDERR_FILENO, text, n + 1);
  (void)w;
  free(text);
}

void hr_logf(hr_log_level_t level, const char *event, const char *fmt, ...) {
  char msg[1024];
  va_list ap;

  if ((int)level < atomic_load(&min_level))
    return;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  hr_log(level, event, json_pack("{s:s}", "msg", msg));
}
