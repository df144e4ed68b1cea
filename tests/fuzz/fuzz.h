/* fuzz.h -- the shape of a fuzz harness (tests/fuzz/README.md).
 *
 * Each harness is one function hr_fuzz_<name>(data, size) that feeds the
 * bytes to a loader or parser and checks what it can about the outcome: it
 * returns 0, and a violated expectation aborts (a finding, like a crash).
 * Built with -DHR_LIBFUZZER, the file also defines libFuzzer's entry point;
 * built into hr-tests, the function replays the seed corpus and the
 * regression inputs on every `make test`. */
#ifndef HR_FUZZ_H
#define HR_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef HR_LIBFUZZER
#define HR_FUZZ_ENTRY_(name)                                                  \
  int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);               \
  int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {              \
    return hr_fuzz_##name(data, size);                                        \
  }
#else
#define HR_FUZZ_ENTRY_(name)
#endif

#define HR_FUZZ_TARGET(name)                                                  \
  int hr_fuzz_##name(const uint8_t *data, size_t size);                       \
  HR_FUZZ_ENTRY_(name)                                                        \
  int hr_fuzz_##name(const uint8_t *data, size_t size)

/* An expectation of the harness: abort with a message when it fails. */
#define FUZZ_EXPECT(cond, ...)                                                \
  do {                                                                        \
    if (!(cond)) {                                                            \
      fprintf(stderr, "%s:%d: expectation failed: %s: ", __FILE__, __LINE__,  \
              #cond);                                                         \
      fprintf(stderr, __VA_ARGS__);                                           \
      fputc('\n', stderr);                                                    \
      abort();                                                                \
    }                                                                         \
  } while (0)

/* Inputs the code under test accepted (a parser or loader succeeded), for
 * the replay test to see that the seeds reach past the first check. */
extern unsigned long hr_fuzz_accepted;

/* v little-endian at p. */
void hr_fuzz_put32(uint8_t *p, uint32_t v);
/* Recompute index.bin's two CRC-32s over n bytes (as anyone who can write
 * the file can), so that mutations reach the structure behind them. */
void hr_fuzz_fix_index_crcs(uint8_t *p, size_t n);

/* The harnesses, for the replay test (tests/unit/test_fuzz_replay.c). */
int hr_fuzz_api(const uint8_t *data, size_t size);
int hr_fuzz_auth(const uint8_t *data, size_t size);
int hr_fuzz_config(const uint8_t *data, size_t size);
int hr_fuzz_model(const uint8_t *data, size_t size);
int hr_fuzz_index(const uint8_t *data, size_t size);
int hr_fuzz_tzif(const uint8_t *data, size_t size);

#endif
