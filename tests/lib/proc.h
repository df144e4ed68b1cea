/* proc.h -- child processes for integration tests: a real redis-server on a
 * free port, the real bin/hyperrec on port 0, and one-shot commands.
 *
 * Every process is forked from the test process (which the runner puts in
 * its own process group, so a timed-out test takes its children with it) and
 * additionally gets PR_SET_PDEATHSIG, so nothing outlives a crashed test.
 * Children run with stdin on /dev/null and stdout+stderr appended to a log
 * file in hr_test_tmpdir(); on failure the helpers print the log's tail.
 * Every wait is bounded; bounds scale with HR_TEST_TIMEOUT_MULT (ASan).
 * Not thread-safe: tests are single-threaded processes. */
#ifndef HRT_PROC_H
#define HRT_PROC_H

#include <jansson.h>
#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

/** HR_TEST_TIMEOUT_MULT (>= 1): multiply every internal deadline by it. */
int hrt_mult(void);
/** Monotonic milliseconds. */
long long hrt_now_ms(void);
/** Sleep for ms milliseconds (for polling loops only). */
void hrt_sleep_ms(int ms);

/** snprintf that treats truncation as a bug: prints and aborts. For paths
 *  and other strings that must be complete. */
void hrt_fmt(char *out, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** Absolute path of a binary in $HR_BIN_DIR (default "bin", relative to
 *  the project root). @param[out] out PATH_MAX bytes. Returns out. */
const char *hrt_bin_path(const char *name, char *out, size_t n);

/** Fork and exec argv[0] (PATH lookup) with stdout and stderr appended to
 *  log_path. HYPERREC_* variables are removed from the child's environment
 *  so the tests are hermetic. Returns the pid, or -1. */
pid_t hrt_spawn(const char *const argv[], const char *log_path);

/** Wait up to timeout_ms for pid. Returns its exit code, 128+signal when it
 *  was killed, or -1 when it is still running at the deadline. */
int hrt_wait(pid_t pid, int timeout_ms);

/** SIGTERM, wait up to grace_ms, then SIGKILL and reap. Returns what
 *  hrt_wait returned for the SIGTERM (-1 when SIGKILL was needed). */
int hrt_terminate(pid_t pid, int grace_ms);

/** Run a command to completion (bounded by timeout_ms, then killed).
 *  Returns its exit code, or -1 on timeout or spawn failure; prints the tail
 *  of log_path when the code is not 0. */
int hrt_run(const char *const argv[], const char *log_path, int timeout_ms);

/** A whole file as a NUL-terminated string (malloc'd; free()), or NULL. */
char *hrt_slurp(const char *path);

/** The last line of a log that parses as a JSON object with `key` (the
 *  JSON line a command prints among its progress lines), or NULL. */
json_t *hrt_last_json(const char *path, const char *key);

/** Print the last `lines` lines of a file to stderr, under a title. */
void hrt_print_tail(const char *title, const char *path, int lines);

/** 1 when the file's text contains `needle`, else 0 (also when it cannot
 *  be read). */
int hrt_file_has(const char *path, const char *needle);

/** 1 when the file contains an ASan/LSan/UBSan report, else 0. */
int hrt_file_has_sanitizer_report(const char *path);

/* ------------------------------------------------------------ redis */

typedef struct {
  pid_t pid;             /* 0 when not running */
  int port;              /* kept across hrt_redis_stop for restarts */
  char dir[PATH_MAX];    /* its --dir, inside hr_test_tmpdir() */
  char log[PATH_MAX];    /* stdout+stderr and --logfile */
  int durable;           /* set before start: AOF with appendfsync always,
                            kept in dir across restarts */
} hrt_redis_t;

/** Start redis-server on a free loopback port (retrying when the port turns
 *  out busy) with no persistence (unless r->durable), and wait until PING
 *  answers. Returns 0 or -1 (with the reason on stderr). A missing
 *  redis-server is a failure. */
int hrt_redis_start(hrt_redis_t *r);
/** Start it again on the same port (after hrt_redis_stop), retrying while
 *  the port is still busy. Returns 0 or -1. The data set starts empty, or,
 *  when durable, as the append-only file left it. */
int hrt_redis_restart(hrt_redis_t *r);
/** Stop it: SIGTERM, then SIGKILL after a grace period. Idempotent. */
void hrt_redis_stop(hrt_redis_t *r);
/** Freeze / thaw it (SIGSTOP / SIGCONT): a hung, not a dead, Redis. */
void hrt_redis_pause(hrt_redis_t *r, int paused);

/* ------------------------------------------------------------ hyperrec */

typedef struct {
  pid_t pid;             /* 0 when not running */
  int port;              /* from the "listening" log line */
  char log[PATH_MAX];    /* the server's stderr */
} hrt_server_t;

/** Start $HR_BIN_DIR/hyperrec with args (NULL-terminated, without argv[0]),
 *  stderr to a fresh file in the tmp dir, and wait (10 s x mult) for the
 *  JSON log line with "event":"listening"; its "port" goes to s->port.
 *  Returns 0, or -1 after printing the log's tail. */
int hrt_server_start(hrt_server_t *s, const char *const args[]);
/** SIGTERM and wait (10 s x mult). Returns the exit code (0 for a graceful
 *  exit), 128+signal, or -1 when it had to be killed; prints the log's tail
 *  when that is not 0 or when the log holds a sanitizer report (then the
 *  return is 99). Idempotent: returns 0 when not running. */
int hrt_server_stop(hrt_server_t *s);
/** Count the log lines containing all of the given substrings
 *  (NULL-terminated). */
int hrt_server_log_count(const hrt_server_t *s, ...)
    __attribute__((sentinel));

#endif
