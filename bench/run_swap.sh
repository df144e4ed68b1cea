#!/usr/bin/env bash
# bench/run_swap.sh -- /recommend latency while model versions are swapped
# in, against the same server in steady state, in one run (issue 5).
#
# A 100k-item factor model with its index (ITEMS) is served by bin/hyperrec.
# Before measuring, the trainer writes SWAPS x RUNS more versions into a
# staging slot, so that the trainer's own CPU does not count: what is
# measured is the server's loading, checking and swapping. Then RUNS times,
# alternating: a steady run (hyperrec-bench http, REQUESTS requests over CONC
# keep-alive connections), and a swap run (the same, while SWAPS staged
# versions are renamed into the live slot one after another, GAP_MS apart).
# Prints every run's JSON line, the medians and the swap/steady ratio of p99,
# and the time from each rename to the server serving that version (from its
# "model_loaded" log line), median and max.
#
#   RUNS=3 bench/run_swap.sh
#
# TRACE=DIR keeps every request's start and latency (DIR/steady-N.txt,
# DIR/swaps-N.txt) and the server's log (DIR/srv.log), and prints p99 of
# the swap runs' requests by when they started: while a version was
# loading, in the second after it was swapped in, or neither.
#
# 127.0.0.1 only; everything is removed at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${HR_BIN_DIR:-bin}
RUNS=${RUNS:-3}
SWAPS=${SWAPS:-5}
GAP_MS=${GAP_MS:-1000}
REQUESTS=${REQUESTS:-30000}
CONC=${CONC:-2}
USERS=${USERS:-5000}
ITEMS=${ITEMS:-100000}
EVENTS=${EVENTS:-60000}
FIT_ARGS=${FIT_ARGS:---iters 2 --factors 32 --ann-m 16 --ann-efc 100}

# shellcheck source=bench/lib.sh
. bench/lib.sh
start_redis

"$BIN/hyperrec-train" gen --out "$tmp/data" --users "$USERS" --items "$ITEMS" --events "$EVENTS" --seed 1 >/dev/null
fit() { # slot seed
  # shellcheck disable=SC2086
  "$BIN/hyperrec-train" fit --data "$tmp/data/events.csv" --items "$tmp/data/items.csv" \
    --out "$1" --seed "$2" --keep 0 --quiet $FIT_ARGS >/dev/null 2>&1
}
mkdir -p "$tmp/models/default" "$tmp/stage/default"
fit "$tmp/models/default" 1
t0=$(date +%s)
for s in $(seq 2 $((RUNS * SWAPS + 1))); do fit "$tmp/stage/default" "$s"; done
t1=$(date +%s)
echo "# $ITEMS items: $((RUNS * SWAPS)) staged versions written in $((t1 - t0)) s; each is $(du -sk "$(ls -d "$tmp"/stage/default/1* | head -1)" | cut -f1) KiB"

"$BIN/hyperrec" --listen 127.0.0.1:0 --redis "127.0.0.1:$RP" --models "$tmp/models" >/dev/null 2>"$tmp/srv.log" &
pids+=($!)
P=$(port_of srv)
TRACE=${TRACE:-}
bench() { # requests [trace file]
  "$BIN/hyperrec-bench" http --target "127.0.0.1:$P" --requests "$1" --concurrency "$CONC" \
    --users "$USERS" --user-prefix u --user-width 5 ${2:+--trace "$2"}
}
[ -z "$TRACE" ] || mkdir -p "$TRACE"
bench 10000 >/dev/null # warm-up: the index and tables paged in

staged=$(ls "$tmp/stage/default" | grep -E '^[0-9]+$' | sort -n)
gap_s=$(printf '%d.%03d' $((GAP_MS / 1000)) $((GAP_MS % 1000)))
next=1
: >"$tmp/renames"
for r in $(seq "$RUNS"); do
  bench "$REQUESTS" ${TRACE:+"$TRACE/steady-$r.txt"} | python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); r["phase"]="steady"; print(json.dumps(r))' | tee -a "$tmp/runs.jsonl"
  bench "$REQUESTS" ${TRACE:+"$TRACE/swaps-$r.txt"} >"$tmp/swap.json" &
  bp=$!
  sleep 0.5
  # the renames cost no more than the server's work: mv (rename(2)) and
  # date, no interpreter starting up next to the load being measured
  for v in $(echo "$staged" | sed -n "${next},$((next + SWAPS - 1))p"); do
    mv -T "$tmp/stage/default/$v" "$tmp/models/default/$v"
    echo "$v $(date +%s.%N)" >>"$tmp/renames"
    sleep "$gap_s"
  done
  next=$((next + SWAPS))
  wait "$bp" || true
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); r["phase"]="swaps"; print(json.dumps(r))' "$tmp/swap.json" | tee -a "$tmp/runs.jsonl"
done
sleep 1
python3 - "$tmp/runs.jsonl" "$tmp/renames" "$tmp/srv.log" "$ITEMS" "$SWAPS" "$GAP_MS" <<'PY'
import json, statistics, sys, datetime
rows = [json.loads(l) for l in open(sys.argv[1])]
med = {}
for ph in ("steady", "swaps"):
    rs = [r for r in rows if r["phase"] == ph]
    med[ph] = {k: statistics.median(r[k] for r in rs) for k in ("rps", "p50_ms", "p99_ms", "max_ms")}
    print(json.dumps({"bench": "swap-median", "phase": ph, "runs": len(rs),
                      "errors": sum(r["errors"] for r in rs), "non_200": sum(r["non_200"] for r in rs),
                      **{k: round(v, 3) for k, v in med[ph].items()}}))
renamed = {int(v): float(t) for v, t in (l.split() for l in open(sys.argv[2]))}
loaded = {}
for l in open(sys.argv[3]):
    if '"model_loaded"' not in l:
        continue
    j = json.loads(l)
    ts = datetime.datetime.strptime(j["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    loaded[j["version"]] = (ts.timestamp(), j.get("load_ms"))
lat = [(loaded[v][0] - t) * 1e3 for v, t in renamed.items() if v in loaded]
load = [loaded[v][1] for v in renamed if v in loaded]
print(json.dumps({"bench": "swap", "items": int(sys.argv[4]), "swaps": len(renamed), "served": len(lat),
                  "swaps_per_run": int(sys.argv[5]), "gap_ms": int(sys.argv[6]),
                  "p99_ratio_swaps_over_steady": round(med["swaps"]["p99_ms"] / med["steady"]["p99_ms"], 2),
                  "rename_to_serving_ms_median": round(statistics.median(lat), 1) if lat else None,
                  "rename_to_serving_ms_max": round(max(lat), 1) if lat else None,
                  "load_ms_median": round(statistics.median(load), 1) if load else None}))
PY
if [ -n "$TRACE" ]; then
  cp "$tmp/srv.log" "$TRACE/srv.log"
  python3 - "$TRACE" <<'PY'
import datetime, glob, json, sys
d = sys.argv[1]
spans = []  # (load start, swapped in) from the server's model_loaded lines
for l in open(d + "/srv.log"):
    if '"model_loaded"' in l:
        j = json.loads(l)
        t = datetime.datetime.strptime(j["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=datetime.timezone.utc).timestamp()
        spans.append((t - j["load_ms"] / 1e3, t))
def p99(xs):
    xs = sorted(xs)
    return round(xs[int(0.99 * (len(xs) - 1))], 3) if xs else None
for ph in ("steady", "swaps"):
    cls = {"loading": [], "after_swap_1s": [], "other": []}
    for f in glob.glob("%s/%s-*.txt" % (d, ph)):
        for line in open(f):
            t, ms = map(float, line.split())
            c = "other"
            for a, b in spans:
                if a <= t <= b:
                    c = "loading"
                    break
                if b < t <= b + 1.0:
                    c = "after_swap_1s"
            cls[c].append(ms)
    print(json.dumps({"bench": "swap-trace", "phase": ph,
                      **{k: {"requests": len(v), "p99_ms": p99(v)} for k, v in cls.items()}}))
PY
fi
