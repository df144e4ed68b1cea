/* fuzz_common.c -- what the harnesses share (fuzz.h). */
#include "fuzz.h"

unsigned long hr_fuzz_accepted;
