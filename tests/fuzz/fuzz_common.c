/* fuzz_common.c -- what the harnesses share (fuzz.h). */
#include "fuzz.h"

#include "hr/crc.h"
#include "../../src/ann/ann_internal.h"

unsigned long hr_fuzz_accepted;

void hr_fuzz_put32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

void hr_fuzz_fix_index_crcs(uint8_t *p, size_t n) {
  if (n < 128)
    return;
  hr_fuzz_put32(p + HR_ANN__BODY_CRC_OFF, hr_crc32(0, p + 128, n - 128));
  hr_fuzz_put32(p + HR_ANN__HEADER_CRC_OFF,
                hr_crc32(0, p, HR_ANN__HEADER_CRC_OFF));
}
