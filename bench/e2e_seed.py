#!/usr/bin/env python3
"""bench/e2e_seed.py -- Redis state for bench/run_e2e.sh, as the Redis protocol
for `redis-cli --pipe` (standard library only).

For every user of DATA/contexts.csv (the users `hyperrec-train gen` wrote):

  PREFIX hist:{u}  HIST entries "<item_id>\\t<unix ts>", newest first, as
                   /event writes them: the user's own newest items of
                   DATA/events.csv, then (for users with fewer events) items
                   drawn from DATA/items.csv with a fixed seed; the newest an
                   hour more than a day before NOW, one hour apart
  PREFIX ctx:{u}   location, mood and tz of DATA/contexts.csv

Both keys are deleted first, so that piping the output again restores the
state after a load test wrote events; --del KEY deletes more keys (the event
stream). Usage:

  e2e_seed.py --data DIR --hist 50 --now T [--prefix hr:] [--del hr:events] |
      redis-cli -p PORT --pipe
"""
import argparse
import csv
import os
import random
import sys


def resp(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a.encode() if isinstance(a, str) else a
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--hist", type=int, default=50)
    ap.add_argument("--now", type=int, required=True)
    ap.add_argument("--prefix", default="hr:")
    ap.add_argument("--del", dest="delete", action="append", default=[])
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()

    with open(os.path.join(a.data, "items.csv"), newline="") as f:
        items = [row[0] for i, row in enumerate(csv.reader(f)) if i > 0 and row]
    recent = {}  # user -> [(ts, item)], kept to the newest HIST
    with open(os.path.join(a.data, "events.csv"), newline="") as f:
        r = csv.reader(f)
        head = next(r)
        iu, ii, it = head.index("user_id"), head.index("item_id"), head.index("ts")
        for row in r:
            lst = recent.setdefault(row[iu], [])
            lst.append((int(row[it]), row[ii]))
            if len(lst) > 2 * a.hist + 16:
                lst.sort()
                del lst[:len(lst) - a.hist]
    rng = random.Random(a.seed)
    out = sys.stdout.buffer
    buf = [resp("DEL", k) for k in a.delete]
    with open(os.path.join(a.data, "contexts.csv"), newline="") as f:
        r = csv.DictReader(f)
        for row in r:
            u = row["user_id"]
            own = [it for _, it in sorted(recent.get(u, []), reverse=True)[:a.hist]]
            while len(own) < a.hist:
                own.append(rng.choice(items))
            hk = "%shist:{%s}" % (a.prefix, u)
            ck = "%sctx:{%s}" % (a.prefix, u)
            buf.append(resp("DEL", hk, ck))
            if own:
                buf.append(resp("RPUSH", hk, *("%s\t%d" % (it, a.now - 90000 - 3600 * j)
                                              for j, it in enumerate(own))))
            buf.append(resp("HSET", ck, "location", row["location"], "mood", row["mood"],
                            "tz", row["tz"]))
            if len(buf) > 2000:
                out.write(b"".join(buf))
                buf = []
    out.write(b"".join(buf))


if __name__ == "__main__":
    main()
