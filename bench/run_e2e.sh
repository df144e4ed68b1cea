#!/usr/bin/env bash
# bench/run_e2e.sh (make bench-e2e) -- hyperrec end to end against its peers,
# side by side in one run: the HTTP ceiling (nginx answering a fixed JSON,
# ../shared/bench/nginx-ceiling.sh), the Python service a team would build
# instead (../shared/bench/pyref), and hyperrec serving a factor model (iALS)
# and the sequential model (seq) of the same generated data (10,000 users x
# 100,000 items, 600,000 events). ROUNDS alternating rounds of wrk -t1 -c32
# (nginx, pyref /recommend, iALS /recommend, seq /recommend, pyref /event,
# hyperrec /event), each run after a short warm-up and logged with the load
# average and, for hyperrec, its minor page faults per request; then a
# markdown table of the medians, the ratios, one e2e-summary JSON line and a
# "target: ... measured: ... ok|MISSED" line per acceptance point. Then (unless
# SCALING=0) how the seq model's cost grows with the catalogue (SIZES) and the
# history length (HISTS), at concurrency 1 and 32, into
# var/e2e/results/scaling.tsv and a gnuplot PNG ($PLOT).
#
#   bench/run_e2e.sh                                  # everything (long on first use)
#   ROUNDS=1 DURATION=2 SCALING=0 bench/run_e2e.sh    # a quick main table
#   MAIN=0 SIZES="10000 100000" HISTS="10 50 200" bench/run_e2e.sh
#
# Data and models are cached under var/e2e/ (FRESH=1 regenerates them), each
# with a stamp of the arguments it was made with; results go to
# var/e2e/results/. Knobs: ROUNDS (3), DURATION (10 s), WARMUP (2 s), CONC (32),
# HIST (50), MAIN (1), SCALING (1), SIZES ("10000 100000 1000000"), HISTS
# ("10 50 200"), FRESH (0), SEQ_ARGS ("--members 4 --long-term 8 --epochs 2"),
# IALS_ARGS, FIT_LIMIT_MIN (0: none; a scaling size whose fit takes longer is
# left out), PLOT (docs/bench-e2e-scaling.png), E2E_DIR (var/e2e), SHARED
# (../shared/bench), HR_BIN_DIR (bin), USERS (10000), EVENTS (600000),
# READY_WAIT (900 s), NGINX_USER (nobody: who runs nginx-ceiling.sh when we
# are root). 127.0.0.1 only; everything started is
# stopped at exit. Exits 0 when the measurement ran, whatever it measured;
# non-zero on a setup error.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONC=${CONC:-32}
HIST=${HIST:-50}
MAIN=${MAIN:-1}
SCALING=${SCALING:-1}
FRESH=${FRESH:-0}
SIZES=${SIZES-10000 100000 1000000}
HISTS=${HISTS-10 50 200}
USERS=${USERS:-10000}
EVENTS=${EVENTS:-600000}
ITEMS=100000 # the main table's catalogue: pyref's 100k set
IALS_ARGS=${IALS_ARGS:-}
SEQ_ARGS=${SEQ_ARGS:---members 4 --long-term 8 --epochs 2}
FIT_LIMIT_MIN=${FIT_LIMIT_MIN:-0}
E2E=${E2E_DIR:-var/e2e}
SHARED=${SHARED:-../shared/bench}
PLOT=${PLOT:-docs/bench-e2e-scaling.png}
SRC_BIN=${HR_BIN_DIR:-bin}
READY_WAIT=${READY_WAIT:-900}  # seconds a server may take to answer (pyref's first run: data)
PY=/usr/bin/python3            # Debian's: pyref's modules live there
RES=$E2E/results

die() { echo "run_e2e: $*" >&2; exit 1; }

# ---- 1. packages -------------------------------------------------------------
need=()
for c in wrk:wrk nginx:nginx-light gunicorn:gunicorn gnuplot:gnuplot-nox \
  redis-server:redis-server redis-cli:redis-tools curl:curl; do
  command -v "${c%%:*}" >/dev/null 2>&1 || need+=("${c#*:}")
done
if [ -x "$PY" ]; then
  for m in flask:python3-flask redis:python3-redis faiss:python3-faiss numpy:python3-numpy; do
    "$PY" -c "import ${m%%:*}" 2>/dev/null || need+=("${m#*:}")
  done
else
  need+=(python3 python3-flask python3-redis python3-faiss python3-numpy)
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "# installing: ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}" >/dev/null ||
      { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}" >/dev/null; } ||
      die "apt-get install ${need[*]} failed"
  else
    echo "missing packages; as root run:" >&2
    echo "  apt-get install -y ${need[*]}" >&2
    exit 1
  fi
fi
if [ ! -x "$SHARED/pyref/run.sh" ] || [ ! -x "$SHARED/nginx-ceiling.sh" ]; then
  die "$SHARED/pyref/run.sh or $SHARED/nginx-ceiling.sh missing (SHARED=...)"
fi

# ---- scratch, processes, cleanup ---------------------------------------------
# shellcheck source=bench/lib.sh
. bench/lib.sh
RP=
gpids=() # process groups started here (servers with their children)
e2e_cleanup() {
  local g
  for g in "${gpids[@]}"; do kill -TERM -- "-$g" 2>/dev/null || true; done
  for _ in $(seq 100); do
    local alive=0
    for g in "${gpids[@]}"; do kill -0 -- "-$g" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for g in "${gpids[@]}"; do kill -KILL -- "-$g" 2>/dev/null || true; done
  cleanup # bench/lib.sh: redis-server, then $tmp
}
trap e2e_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# bg LOG CMD...: starts CMD in its own process group (so that stopping it
# stops its children too); BGPID is its pid and process group.
bg() {
  local log=$1; shift
  set -m
  "$@" >"$log" 2>&1 &
  BGPID=$!
  set +m
  gpids+=("$BGPID")
}
forget() { # PID: a group that has ended
  local keep=() x
  for x in "${gpids[@]}"; do [ "$x" = "$1" ] || keep+=("$x"); done
  gpids=("${keep[@]}")
}
stop_group() {
  kill -TERM -- "-$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  forget "$1"
}

mkdir -p "$RES/wrk" "$E2E/logs"
: >"$RES/phases.tsv"
phase() { # NAME START: how long a phase took
  local s=$(($(date +%s) - $2))
  echo "# phase $1: $s s"
  printf '%s\t%s\n' "$1" "$s" >>"$RES/phases.tsv"
}

# ---- the machine, the commit, a stable copy of bin/ ----------------------------
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain 2>/dev/null)" ]; then commit+=-dirty; fi
load0=$(cut -d' ' -f1-3 /proc/loadavg)
echo "# machine: $(nproc) cores, load average $load0, $(uname -sr); commit $commit; $(date -u +%FT%TZ)"
echo "# rounds $ROUNDS x ${DURATION}s (warm-up ${WARMUP}s), wrk -t1 -c$CONC, history $HIST, main $MAIN, scaling $SCALING"

# Another build may replace bin/ while this runs: serve and fit from a copy
# taken once it works (waiting up to 10 minutes for a build in progress).
TB=$tmp/bin
mkdir -p "$TB"
for try in $(seq 61); do
  ok=1
  for b in hyperrec hyperrec-train hyperrec-bench; do
    cp "$SRC_BIN/$b" "$TB/$b" 2>/dev/null || ok=0
  done
  if [ $ok = 1 ] && "$TB/hyperrec" --version >/dev/null 2>&1 &&
    "$TB/hyperrec-train" --help >/dev/null 2>&1; then break; fi
  [ "$try" = 61 ] && die "$SRC_BIN/ has no working hyperrec, hyperrec-train, hyperrec-bench (make -j2 all)"
  echo "# $SRC_BIN/ not usable yet (being rebuilt?); retrying in 10 s" >&2
  sleep 10
done
echo "# $("$TB/hyperrec" --version 2>&1 | head -1)"

# ---- 2. data and models (cached, stamped) --------------------------------------
dname() { case $1 in 1000000) echo 1M ;; 100000) echo 100k ;; 10000) echo 10k ;; *) echo "$1" ;; esac; }
declare -A made=() # what FRESH=1 has already regenerated in this run
stale() {          # DIR WANT: DIR must be (re)made
  if [ "$FRESH" = 1 ] && [ -z "${made[$1]:-}" ]; then return 0; fi
  [ "$(cat "$1/.stamp" 2>/dev/null)" != "$2" ]
}

# data N: DATA is the generated set with N items.
data() {
  DATA=$E2E/data$(dname "$1")
  local want="gen --users $USERS --items $1 --events $EVENTS --seed 1"
  if stale "$DATA" "$want" || [ ! -s "$DATA/contexts.csv" ]; then
    local t0; t0=$(date +%s)
    rm -rf "$DATA"
    # shellcheck disable=SC2086
    "$TB/hyperrec-train" $want --out "$DATA" >/dev/null
    printf '%s\n' "$want" >"$DATA/.stamp"
    made[$DATA]=1
    phase "gen $(dname "$1")" "$t0"
  fi
}

# fit OUT LIMIT_S FIT_OPTIONS...: the models directory OUT (slot default) of
# DATA; LIMIT_S > 0 gives up after that many seconds (returns 1).
fit() {
  local out=$1 limit=$2; shift 2
  local want; want="$(cat "$DATA/.stamp") | fit $*"
  if stale "$out" "$want" || ! compgen -G "$out/default/*/manifest.json" >/dev/null; then
    local t0 rc=0 log; t0=$(date +%s) log=$E2E/logs/fit-$(basename "$out").log
    rm -rf "$out"
    mkdir -p "$out"
    echo "# fitting $out: fit $* (log: $log)"
    local cmd=("$TB/hyperrec-train" fit --data "$DATA/events.csv" --items "$DATA/items.csv" --out "$out/default" "$@")
    if [ "$limit" -gt 0 ]; then cmd=(timeout "$limit" "${cmd[@]}"); fi
    # in the background: a signal stops the script (and the fit) at once
    bg "$log" "${cmd[@]}"
    wait "$BGPID" || rc=$?
    forget "$BGPID"
    if [ $rc = 124 ]; then
      echo "# fit of $out gave up after $limit s (FIT_LIMIT_MIN)"
      rm -rf "$out"
      return 1
    fi
    [ $rc = 0 ] || { tail -n 20 "$log" >&2; die "fit of $out failed (log: $log)"; }
    printf '%s\n' "$want" >"$out/.stamp"
    made[$out]=1
    phase "fit $(basename "$out")" "$t0"
  fi
}
seq_models() { if [ "$1" = "$ITEMS" ]; then echo "$E2E/models-seq"; else echo "$E2E/models-seq-$(dname "$1")"; fi; }
# shellcheck disable=SC2206
ials_opts=($IALS_ARGS)
# shellcheck disable=SC2206
seq_opts=($IALS_ARGS --kind seq $SEQ_ARGS)

if [ "$MAIN" != 0 ] || { [ -n "$HISTS" ] && [ "$SCALING" != 0 ]; }; then
  data "$ITEMS"
  if [ "$MAIN" != 0 ]; then fit "$E2E/models-ials" 0 "${ials_opts[@]}"; fi
  fit "$E2E/models-seq" 0 "${seq_opts[@]}"
fi

# ---- 3. Redis -----------------------------------------------------------------
NOW=$(date +%s)
NONCE=$NOW-$$
start_redis
[ -n "$RP" ] || die "redis-server did not start"
# seed FILE DATA HIST PREFIX [e2e_seed.py options]: writes the Redis state
# (histories, contexts) of DATA's users into FILE and loads it.
seed() {
  local f=$1 d=$2 h=$3 p=$4; shift 4
  "$PY" bench/e2e_seed.py --data "$d" --hist "$h" --prefix "$p" --now "$NOW" "$@" >"$f"
  load_seed "$f"
}
load_seed() {
  local o
  o=$(redis-cli -p "$RP" --pipe <"$1" 2>&1) || die "redis-cli --pipe failed: $o"
  case $o in *"errors: 0,"*) ;; *) die "seeding Redis failed: $o" ;; esac
}

# ---- 4. servers ---------------------------------------------------------------
declare -A HPORT=() HPID=()
# hr NAME MODELS [hyperrec options]: a hyperrec on a free port; ready() waits.
hr() {
  local name=$1 models=$2; shift 2
  bg "$tmp/$name.log" "$TB/hyperrec" --listen 127.0.0.1:0 --redis "127.0.0.1:$RP" --models "$models" "$@"
  HPID[$name]=$BGPID
}
# code METHOD URL [BODY]: the HTTP status (000 when nothing answers)
code() {
  local a=(-s -o /dev/null -w '%{http_code}' -m 10 -X "$1" "$2")
  if [ $# -gt 2 ]; then a+=(-H 'Content-Type: application/json' -H "Authorization: Bearer $HR_BENCH_KEY" -d "$3"); fi
  curl "${a[@]}" 2>/dev/null || true
}
# await NAME PID LOG WANT METHOD URL [BODY]: until the request answers WANT.
await() {
  local name=$1 pid=$2 log=$3 want=$4; shift 4
  local t0 c; t0=$(date +%s)
  while :; do
    c=$(code "$@")
    [ "$c" = "$want" ] && return 0
    if ! kill -0 "$pid" 2>/dev/null; then tail -n 30 "$log" >&2; die "$name exited before answering"; fi
    if [ $(($(date +%s) - t0)) -gt "$READY_WAIT" ]; then
      tail -n 30 "$log" >&2
      die "$name did not answer $want within $READY_WAIT s (last: $c; a model of an older format? FRESH=1)"
    fi
    sleep 0.5
  done
}
ready() { # NAME: port from the log, then /readyz
  local name=$1 p
  p=$(port_of "$name" || true)
  [ -n "$p" ] || { tail -n 30 "$tmp/$name.log" >&2; die "$name did not start listening"; }
  HPORT[$name]=$p
  await "$name" "${HPID[$name]}" "$tmp/$name.log" 200 GET "http://127.0.0.1:$p/readyz"
}
minflt() { local f; read -r -a f <"/proc/$1/stat" || die "process $1 is gone"; echo "${f[9]}"; }
# warm NAME: one /recommend per user, so that the runs measure the steady
# state (what a server keeps of each user history is computed on its first
# request); the time it took is the cost of new histories.
warm() {
  local w t0
  t0=$(date +%s)
  w=$("$PY" bench/e2e_warm.py --port "${HPORT[$1]}" --users "$USERS" --now "$NOW") ||
    die "warming $1 failed: $w"
  printf '%s\t%s\n' "$1" "$w" >>"$RES/warm.tsv"
  phase "warm $1: $w" "$t0"
}

# measure PART TARGET ROUND CONC KIND URL PID [KEY=VALUE...]: a warm-up, then
# one wrk run, appended to the PART's rows. KIND: get (plain GET), pyrec,
# pyevent (pyref's own scripts), rec, event (bench/e2e.lua). PID: a
# hyperrec whose page faults are counted, or "".
measure() {
  local part=$1 target=$2 round=$3 conc=$4 kind=$5 url=$6 pid=$7; shift 7
  local out=$RES/wrk/$part-r$round-$target-c$conc.txt sets=() flt=() kv load f0 f1
  for kv in "$@"; do sets+=(--set "$kv"); done
  wrkcmd() { # DURATION_S TAG SEED: TAG and SEED tell the warm-up from the run
    local s=() l=()
    case $kind in
      get) ;;
      pyrec) s=(-s "$SHARED/pyref/wrk_recommend.lua") ;;
      pyevent) s=(-s "$SHARED/pyref/wrk_event.lua") ;;
      rec) s=(-s bench/e2e.lua) l=(-- rec "$USERS" "$NOW" "$((2 * round + ${3:-0}))") ;;
      event) s=(-s bench/e2e.lua) l=(-- event "$USERS" "$ITEMS" "$NONCE-$part-$target-r$round-c$conc-$2") ;;
      *) die "measure: unknown kind $kind" ;;
    esac
    wrk -t1 -c"$conc" -d"${1}s" --latency "${s[@]}" "$url" "${l[@]}"
  }
  if [ "$WARMUP" != 0 ]; then wrkcmd "$WARMUP" w 0 >/dev/null 2>&1 || true; fi
  load=$(cut -d' ' -f1 /proc/loadavg)
  if [ -n "$pid" ]; then f0=$(minflt "$pid"); fi
  wrkcmd "$DURATION" m 1 >"$out" 2>&1 || echo "wrk exited with $?" >>"$out"
  if [ -n "$pid" ]; then
    f1=$(minflt "$pid")
    flt=(--flt "$f0" "$f1")
  fi
  "$PY" bench/e2e_summary.py row --wrk "$out" --out "$ROWS" --part "$part" --target "$target" \
    --round "$round" --conc "$conc" --duration "$DURATION" --load "$load" "${flt[@]}" "${sets[@]}"
}

# ---- 5.-7. the side-by-side rounds ----------------------------------------------
if [ "$MAIN" != 0 ]; then
  ROWS=$RES/runs.jsonl
  : >"$ROWS"
  rm -f "$RES"/wrk/main-*
  t0=$(date +%s)
  seed "$tmp/main.resp" "$E2E/data100k" "$HIST" hr: --del hr:events
  phase "seed Redis ($USERS users x $HIST items)" "$t0"

  t0=$(date +%s)
  hr ials "$E2E/models-ials"
  hr seq "$E2E/models-seq"
  # the same model keeping nothing between requests: every request computes
  # the user's vector and searches the index (a row of its own, for scale)
  hr seqcold "$E2E/models-seq" --set recommend.user_cache_mb=0
  ready ials
  ready seq
  ready seqcold
  phase "hyperrec servers ready" "$t0"
  : >"$RES/warm.tsv"
  warm ials
  warm seq

  t0=$(date +%s)
  NPORT=$(port)
  # As root, nginx's worker runs as nobody and cannot read the script's
  # mktemp directory (mode 0700): every answer would be 403. So the whole
  # script then runs as nobody (NGINX_USER).
  asuser=()
  if [ "$(id -u)" = 0 ]; then asuser=(runuser -u "${NGINX_USER:-nobody}" --); fi
  bg "$tmp/nginx.log" "${asuser[@]}" env PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    NPORT="$NPORT" "$SHARED/nginx-ceiling.sh"
  NGPID=$BGPID
  await nginx "$NGPID" "$tmp/nginx.log" 200 GET "http://127.0.0.1:$NPORT/rec.json"
  phase "nginx ready" "$t0"

  t0=$(date +%s)
  APORT=$(port)
  PRPORT=$(port)
  pdata=${PYREF_DATA:-/tmp/pyref-data}
  if [ -f "$pdata/100k/faiss_hnsw.index" ]; then pnote="data cached in $pdata"; else
    pnote="first run: data generated into $pdata"; echo "# pyref: $pnote (minutes)"; fi
  bg "$tmp/pyref.log" env APORT="$APORT" RPORT="$PRPORT" "$SHARED/pyref/run.sh"
  PYPID=$BGPID
  await pyref "$PYPID" "$tmp/pyref.log" 200 POST "http://127.0.0.1:$APORT/recommend" \
    '{"user_id":"u00001","k":20,"context":{"hour":9,"location":"home","mood":"happy"}}'
  phase "pyref ready ($pnote)" "$t0"

  # One request of each shape first: a 4xx here is a broken request, not load.
  for name in ials seq; do
    curl -s -m 10 -X POST "http://127.0.0.1:${HPORT[$name]}/recommend" -H 'Content-Type: application/json' \
      -H "Authorization: Bearer $HR_BENCH_KEY" \
      -d "{\"user_id\":\"u00001\",\"k\":20,\"context\":{\"ts\":$((NOW - 3600)),\"location\":\"home\",\"mood\":\"calm\"}}" |
      "$PY" -c 'import json, sys
r = json.load(sys.stdin)
if "items" not in r:
    sys.exit("%s /recommend: %s" % (sys.argv[1], r))
print("# %s: retrieval %s, history_used %s, %d items, context %s" % (sys.argv[1], r["retrieval"],
      r["history_used"], len(r["items"]), {k: v for k, v in r["context"].items() if v is not None}))' \
        "$name" || die "$name /recommend check failed"
  done
  c=$(code POST "http://127.0.0.1:${HPORT[ials]}/event" \
    "{\"user_id\":\"u00001\",\"item_id\":\"i00001\",\"type\":\"view\",\"event_id\":\"$NONCE-check\",\"context\":{\"location\":\"home\"}}")
  [ "$c" = 202 ] || die "hyperrec /event check answered $c"

  for r in $(seq "$ROUNDS"); do
    t0=$(date +%s)
    load_seed "$tmp/main.resp" # undo the last round's events
    measure main nginx "$r" "$CONC" get "http://127.0.0.1:$NPORT/rec.json" ""
    measure main pyref-rec "$r" "$CONC" pyrec "http://127.0.0.1:$APORT" ""
    measure main ials-rec "$r" "$CONC" rec "http://127.0.0.1:${HPORT[ials]}" "${HPID[ials]}"
    measure main seq-rec "$r" "$CONC" rec "http://127.0.0.1:${HPORT[seq]}" "${HPID[seq]}"
    measure main seq-cold-rec "$r" "$CONC" rec "http://127.0.0.1:${HPORT[seqcold]}" "${HPID[seqcold]}"
    measure main pyref-event "$r" "$CONC" pyevent "http://127.0.0.1:$APORT" ""
    measure main hr-event "$r" "$CONC" event "http://127.0.0.1:${HPORT[ials]}" "${HPID[ials]}"
    phase "round $r" "$t0"
  done
  # Every /event request had its own event_id: none may count as a duplicate.
  dups=$(curl -s -m 10 "http://127.0.0.1:${HPORT[ials]}/metrics" |
    awk '/^hyperrec_events_total\{result="duplicate"\}/ { print $2 }')
  load_seed "$tmp/main.resp"

  rm -f "$RES/recall.json"
  if "$TB/hyperrec-bench" recall --help >/dev/null 2>&1; then
    t0=$(date +%s)
    if "$TB/hyperrec-bench" recall --models "$E2E/models-seq" --redis "127.0.0.1:$RP" \
      --users 1000 --k 200 >"$RES/recall.json" 2>"$tmp/recall.log"; then
      phase "recall" "$t0"
    else
      tail -n 5 "$tmp/recall.log" >&2
      echo "# hyperrec-bench recall failed" >&2
      rm -f "$RES/recall.json"
    fi
  fi

  meta=$("$PY" -c 'import json, sys
d = {}
for a in sys.argv[1:]:
    k, v = a.split("=", 1)
    d[k] = int(v) if v.isdigit() else v
print(json.dumps(d))' commit="$commit" date="$(date -u +%FT%TZ)" nproc="$(nproc)" load_start="$load0" \
    rounds="$ROUNDS" duration_s="$DURATION" warmup_s="$WARMUP" conc="$CONC" users="$USERS" items="$ITEMS" \
    events="$EVENTS" hist="$HIST" seq_args="$SEQ_ARGS" ials_args="$IALS_ARGS")
  echo
  "$PY" bench/e2e_summary.py main --runs "$ROWS" --results "$RES" --recall "$RES/recall.json" \
    --duplicates "${dups:-unknown}" --meta "$meta"
  echo
  for g in "${HPID[ials]}" "${HPID[seq]}" "${HPID[seqcold]}" "$NGPID" "$PYPID"; do stop_group "$g"; done
fi

# ---- 8. scaling: catalogue size and history length ------------------------------
if [ "$SCALING" != 0 ]; then
  ROWS=$RES/scaling_runs.jsonl
  : >"$ROWS"
  rm -f "$RES"/wrk/scaling-*
  points=() # "axis items hist server"
  for n in $SIZES; do
    data "$n"
    limit=0
    if [ "$n" != "$ITEMS" ]; then limit=$((FIT_LIMIT_MIN * 60)); fi
    if fit "$(seq_models "$n")" "$limit" "${seq_opts[@]}"; then
      seed "$tmp/s$n.resp" "$DATA" "$HIST" "e2e:s$n:"
      hr "s$n" "$(seq_models "$n")" --set "redis.key_prefix=e2e:s$n:"
      points+=("items $n $HIST s$n")
    fi
  done
  for h in $HISTS; do
    seed "$tmp/h$h.resp" "$E2E/data100k" "$h" "e2e:h$h:"
    hr "h$h" "$E2E/models-seq" --set "redis.key_prefix=e2e:h$h:"
    points+=("hist $ITEMS $h h$h")
  done
  [ ${#points[@]} -gt 0 ] || die "no scaling point left to measure (SIZES, HISTS, FIT_LIMIT_MIN)"
  t0=$(date +%s)
  for p in "${points[@]}"; do
    read -r _ _ _ name <<<"$p"
    ready "$name"
  done
  phase "scaling servers ready" "$t0"
  for p in "${points[@]}"; do
    read -r _ _ _ name <<<"$p"
    warm "$name"
  done
  for r in $(seq "$ROUNDS"); do
    t0=$(date +%s)
    for p in "${points[@]}"; do
      read -r axis n h name <<<"$p"
      for c in 1 "$CONC"; do
        measure scaling "$name" "$r" "$c" rec "http://127.0.0.1:${HPORT[$name]}" "${HPID[$name]}" \
          axis="$axis" items="$n" hist="$h"
      done
    done
    phase "scaling round $r" "$t0"
  done
  echo
  "$PY" bench/e2e_summary.py scaling --runs "$ROWS" --results "$RES"
  mkdir -p "$(dirname "$PLOT")"
  if gnuplot -e "file='$RES/scaling.tsv'; out='$PLOT'; conc=$CONC" bench/plot_e2e.gp 2>"$tmp/gnuplot.log"; then
    echo "# plot: $PLOT"
  else
    cat "$tmp/gnuplot.log" >&2
    echo "# gnuplot failed; the numbers are in $RES/scaling.tsv" >&2
  fi
fi
echo "# results: $RES/ (runs.jsonl, runs.tsv, summary.md, summary.json, scaling.tsv, wrk/, phases.tsv)"
