/* crc.h -- CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320).
 *
 * The checksum of every model file (docs/model-format.md) and of the model.bin
 * header and tensor table. It is the same CRC as zlib's crc32() and Python's
 * zlib.crc32(), so files can be checked from outside. Slicing-by-8, tables
 * built once at compile time; no state, thread-safe, about 1-2 GB/s. */
#ifndef HR_CRC_H
#define HR_CRC_H

#include <stddef.h>
#include <stdint.h>

/** Continue a CRC-32 over `n` bytes of `buf`. Start with crc = 0; feeding a
 *  buffer in pieces gives the same result as feeding it at once:
 *  hr_crc32(hr_crc32(0, a, na), b, nb) == CRC of a||b. buf may be NULL
 *  when n is 0. */
uint32_t hr_crc32(uint32_t crc, const void *buf, size_t n);

#endif
