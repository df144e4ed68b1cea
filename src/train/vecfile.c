/* vecfile.c -- VEC1 vector files (the ANN benchmark's format, see
 * ../shared/bench/README.md): "VEC1", uint32 n, uint32 dim, n*dim float32,
 * little-endian. */
#include "hr/train.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

float *hr_vec_read(const char *path, size_t *n, int *dim, hr_error_t *err) {
  FILE *f = fopen(path, "rb");
  unsigned char h[12];
  struct stat st;
  uint32_t rows, cols;
  float *x;

  if (f == NULL) {
    hr_error_set(err, HR_EIO, NULL, "%s: %s", path, strerror(errno));
    return NULL;
  }
  if (fread(h, 1, 12, f) != 12 || memcmp(h, "VEC1", 4) != 0) {
    fclose(f);
    hr_error_set(err, HR_EFORMAT, NULL, "%s: not a VEC1 file", path);
    return NULL;
  }
  rows = (uint32_t)h[4] | (uint32_t)h[5] << 8 | (uint32_t)h[6] << 16 |
         (uint32_t)h[7] << 24;
  cols = (uint32_t)h[8] | (uint32_t)h[9] << 8 | (uint32_t)h[10] << 16 |
         (uint32_t)h[11] << 24;
  if (fstat(fileno(f), &st) != 0 || rows == 0 || cols == 0 || cols > 4096 ||
      (uint64_t)st.st_size != 12 + (uint64_t)rows * cols * 4) {
    fclose(f);
    hr_error_set(err, HR_EFORMAT, NULL,
                 "%s: header says %u x %u floats, the file has %lld bytes",
                 path, rows, cols, (long long)st.st_size);
    return NULL;
  }
  x = malloc((size_t)rows * cols * sizeof(float));
  if (x == NULL) {
    fclose(f);
    hr_error_set(err, HR_ENOMEM, NULL, "%s: out of memory", path);
    return NULL;
  }
  if (fread(x, sizeof(float), (size_t)rows * cols, f) != (size_t)rows * cols) {
    free(x);
    fclose(f);
    hr_error_set(err, HR_EIO, NULL, "%s: short read", path);
    return NULL;
  }
  fclose(f);
  *n = rows;
  *dim = (int)cols;
  return x;
}
