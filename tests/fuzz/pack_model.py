#!/usr/bin/env python3
"""pack_model.py VERSION_DIR -- a model version directory as one input of
fuzz_model (tests/fuzz/fuzz_model.c) on stdout: the flags byte 7 (every CRC
and the manifest's sums recomputed by the harness), then one record
[file byte][u32 little-endian length][bytes] per file."""
import os
import struct
import sys

NAMES = ["manifest.json", "model.bin", "items.tsv", "users.tsv", "index.bin",
         "extra.bin"]

def main():
    d = sys.argv[1]
    out = bytearray([7])
    for i, name in enumerate(NAMES):
        p = os.path.join(d, name)
        if os.path.exists(p):
            data = open(p, "rb").read()
            out += struct.pack("<BI", i, len(data)) + data
    sys.stdout.buffer.write(out)

if __name__ == "__main__":
    main()
