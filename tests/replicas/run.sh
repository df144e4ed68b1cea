#!/usr/bin/env bash
# tests/replicas/run.sh -- `make test-replicas`: three bin/hyperrec replicas
# on 127.0.0.1 behind HAProxy configured by deploy/haproxy.cfg, one Redis
# (AOF), one models directory, under a steady load from build/hr-load.
#
#   capacity  one replica alone, as fast as 32 connections go (median of
#             3), directly and behind the same HAProxy
#   phase A   REPLICAS_SECONDS (default 70) of load through HAProxy at
#             REPLICAS_SHARE (default 0.5) of the second, during which
#             one replica is killed (SIGKILL, then started again), another
#             is stopped (SIGTERM) and started again, as a rolling update
#             does, and a new model version is published
#   phase B   Redis stopped under load, then started again
#
# Checks (each one "ok"/"FAIL"): no non-2xx and no connection error on
# /recommend; every acknowledged event in the stream and its idempotency
# key in Redis; every replica serving the new version; each user's variant
# the same on every replica; in phase B every replica ready, /recommend 200
# degraded, /event 503 with Retry-After, then recovery without a restart.
# The figures go to $REPLICAS_OUT (default var/replicas.json). Ends with
# "N passed, N failed"; only loopback addresses are used.
set -uo pipefail
cd "$(dirname "$0")/../.."

BIN=${HR_BIN_DIR:-bin}
LOAD=${HR_LOAD:-build/hr-load}
SECONDS_A=${REPLICAS_SECONDS:-70}
SHARE=${REPLICAS_SHARE:-0.5}
OUT=${REPLICAS_OUT:-var/replicas.json}
work=$(mktemp -d /tmp/hr-replicas.XXXXXX)
declare -a rport rpid
redis_pid="" lb_pid="" load_pid=""

SUITE=replicas
# shellcheck source=tests/lib/checks.sh
. tests/lib/checks.sh
cleanup() {
  for p in "${rpid[@]}" "$lb_pid" "$load_pid" "$redis_pid"; do
    [ -n "$p" ] && kill -KILL "$p" 2>/dev/null
  done
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
die() { echo "replicas: $*" >&2; bad "$*"; summary; exit 1; }

json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }
# jtrue FILE EXPR: exit 0 when the Python expression over d holds
jtrue() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if eval(sys.argv[2]) else 1)" "$@"; }
# same A B [C ...]: all arguments equal, and the first one positive
same() { [ "$1" -gt 0 ] || return 1; local a=$1; shift; for b; do [ "$a" = "$b" ] || return 1; done; }
ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' "127.0.0.1:$1/readyz")" = 200 ]; }

command -v haproxy >/dev/null || die "haproxy is not installed (make test-replicas installs it as root)"
[ -x "$LOAD" ] && [ -x "$BIN/hyperrec" ] || die "build first: make all $LOAD"

# ------------------------------------------------------------------ set-up
redis_port=$(free_port)
mkdir -p "$work/redis" "$work/models" "$work/data"
start_redis() {
  redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$work/redis" \
    --appendonly yes --appendfsync everysec --save '' \
    >>"$work/redis.log" 2>&1 &
  redis_pid=$!
  wait_for redis 100 redis-cli -p "$redis_port" ping
}
rcli() { redis-cli -p "$redis_port" "$@"; }
start_redis || die "redis did not start"

"$BIN/hyperrec-train" gen --out "$work/data" --seed 5 --users 2000 \
  --items 400 --events 40000 >/dev/null || die "gen failed"
fit() {
  "$BIN/hyperrec-train" fit --data "$work/data/events.csv" \
    --items "$work/data/items.csv" --kind ials --factors 32 --iters 4 \
    --seed "$1" --out "$work/models/default" --force --quiet 2>>"$work/fit.log"
}
v1=$(basename "$(fit 1)") || die "fit failed"
tail -n +2 "$work/data/events.csv" | cut -d, -f1 | sort -u >"$work/users.txt"
tail -n +2 "$work/data/items.csv" | cut -d, -f1 >"$work/items.txt"

key=hrk_replicas_$$
key_hash=$("$BIN/hyperrec" hash-key "$key")
auth=(-H "authorization: Bearer $key" -H "content-type: application/json")
cat >"$work/hyperrec.json" <<EOF
{"models_poll_ms": 200, "threads": ${REPLICAS_THREADS:-0},
 "auth": {"api_keys": ["load:$key_hash"], "event": "key", "recommend": "key"},
 "experiments": [{"name": "home", "salt": "home-1", "variants": [
   {"name": "control", "weight": 50}, {"name": "b", "weight": 50}]}]}
EOF
start_replica() { # N
  "$BIN/hyperrec" --config "$work/hyperrec.json" \
    --listen "127.0.0.1:${rport[$1]}" --redis "127.0.0.1:$redis_port" \
    --models "$work/models" --log-level warn >>"$work/r$1.log" 2>&1 &
  rpid[$1]=$!
  wait_for "replica $1" 300 ready "${rport[$1]}"
}
for n in 1 2 3; do
  rport[$n]=$(free_port)
  start_replica "$n" || die "replica $n did not become ready"
done

lb_port=$(free_port)
start_lb() { # REPLICA_1 REPLICA_2 REPLICA_3 (ports)
  HYPERREC_LB_BIND="127.0.0.1:$lb_port" \
  HYPERREC_REPLICA_1="127.0.0.1:$1" \
  HYPERREC_REPLICA_2="127.0.0.1:$2" \
  HYPERREC_REPLICA_3="127.0.0.1:$3" \
    haproxy -f deploy/haproxy.cfg -db >>"$work/haproxy.log" 2>&1 &
  lb_pid=$!
  wait_for haproxy 100 curl -fsS "127.0.0.1:$lb_port/lb-health" ||
    { cat "$work/haproxy.log"; die "haproxy did not start"; }
  wait_for "a first answer through haproxy" 100 curl -fsS "${auth[@]}" \
    -d '{"user_id":"x","k":1}' "127.0.0.1:$lb_port/recommend" ||
    die "no answer through haproxy"
}
stop_lb() { kill -TERM "$lb_pid"; wait "$lb_pid" 2>/dev/null; lb_pid=""; }

load() { # PORT RATE SECONDS PREFIX [more hr-load flags]
  "$LOAD" --port "$1" --rate "$2" --seconds "$3" --id-prefix "$4" \
    --users "$work/users.txt" --items "$work/items.txt" \
    --header "Authorization: Bearer $key" "${@:5}"
}

# ---------------------------------------------------------------- capacity
# One replica's capacity, as fast as 32 connections go, median of 3 runs of
# 3 s: directly, and as it is deployed, behind the same HAProxy (every
# server line of deploy/haproxy.cfg pointing at it). Every process here
# shares this machine's cores, so the balancer's own work comes out of the
# replicas' share: the second figure is what one replica carries in this
# set-up, and the one the phase A rate is drawn from.
capacity() { # PORT NAME -> median req/s
  local caps=() k
  for k in 1 2 3; do
    load "$1" 0 3 "cap-$2-$k" --conns 32 >"$work/cap-$2-$k.json" || die "hr-load failed"
    caps+=("$(json "$work/cap-$2-$k.json" 'round(d["recommend"]["rps"] + d["event"]["rps"])')")
  done
  echo "capacity of one replica, $2: ${caps[*]} req/s" >&2
  printf '%s\n' "${caps[@]}" | sort -n | sed -n 2p
}
capacity_direct=$(capacity "${rport[1]}" direct)
start_lb "${rport[1]}" "${rport[1]}" "${rport[1]}"
capacity=$(capacity "$lb_port" "behind haproxy")
stop_lb
start_lb "${rport[1]}" "${rport[2]}" "${rport[3]}"
# aimed 10 % above the share: what is achieved is checked against the share
rate=$(python3 -c "import math,sys; print(math.ceil(float(sys.argv[1]) * float(sys.argv[2]) * 1.1))" "$capacity" "$SHARE")
echo "one replica: $capacity_direct req/s direct, $capacity behind haproxy; phase A at $rate req/s"
rcli DEL hr:events >/dev/null
rcli --scan --pattern 'hr:evid:*' | xargs -r -n 500 redis-cli -p "$redis_port" DEL >/dev/null

# ----------------------------------------------------------------- phase A
t0=$(date +%s)
at() { # wait until second $1 of the phase
  local d=$(( t0 + $1 - $(date +%s) ))
  [ "$d" -gt 0 ] && sleep "$d"
  return 0
}
load "$lb_port" "$rate" "$SECONDS_A" a --conns 192 --acked "$work/acked-a.txt" \
  >"$work/phase-a.json" &
load_pid=$!
at 10
kill -KILL "${rpid[1]}"; wait "${rpid[1]}" 2>/dev/null
echo "t=$(( $(date +%s) - t0 ))s: replica 1 killed (SIGKILL)"
at 20
start_replica 1 && echo "t=$(( $(date +%s) - t0 ))s: replica 1 started again"
at 30
kill -TERM "${rpid[2]}"; wait "${rpid[2]}"; term_rc=$?
echo "t=$(( $(date +%s) - t0 ))s: replica 2 stopped (SIGTERM, exit $term_rc)"
start_replica 2 && echo "t=$(( $(date +%s) - t0 ))s: replica 2 started again (rolled)"
at 40
v2=$(basename "$(fit 2)")
echo "t=$(( $(date +%s) - t0 ))s: model version $v2 published (was $v1)"
served_v2() {
  for n in 1 2 3; do
    curl -fsS "127.0.0.1:${rport[$n]}/models" | grep -q "\"version\": *$v2" || return 1
  done
}
wait_for "version $v2 on every replica" 300 served_v2
echo "t=$(( $(date +%s) - t0 ))s: every replica serves $v2"
wait "$load_pid"; load_pid=""

echo "== phase A: $(cat "$work/phase-a.json")"
A="$work/phase-a.json"
achieved=$(json "$A" 'round((d["recommend"]["ok"] + d["event"]["ok"]) / d["seconds"])')
check "phase A lasted >= 60 s ($(json "$A" 'd["seconds"]') s)" \
  jtrue "$A" 'd["seconds"] >= 60'
check "load >= $SHARE of one replica's capacity behind haproxy ($achieved of $capacity req/s; $(python3 -c "print(round($achieved / $capacity_direct, 3))") of its direct $capacity_direct)" \
  python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) >= float(sys.argv[2]) * float(sys.argv[3]) else 1)" \
  "$achieved" "$SHARE" "$capacity"
check "replica 2 exited 0 on SIGTERM" [ "$term_rc" = 0 ]
check "/recommend: 0 non-2xx ($(json "$A" 'd["recommend"]["non2xx"]') of $(json "$A" 'd["recommend"]["sent"]'))" \
  [ "$(json "$A" 'd["recommend"]["non2xx"]')" = 0 ]
check "/recommend: 0 connection errors or timeouts" \
  [ "$(json "$A" 'd["recommend"]["conn_errors"] + d["recommend"]["timeouts"]')" = 0 ]
check "/event: 0 non-2xx, connection errors or timeouts ($(json "$A" 'd["event"]["status"]'))" \
  [ "$(json "$A" 'd["event"]["non2xx"] + d["event"]["conn_errors"] + d["event"]["timeouts"]')" = 0 ]

# Lost events: every acknowledged id must be in the stream and have its
# idempotency key; the stream must hold nothing else.
lost_events() { # ACKED_FILE -> prints "acked in_stream keys xlen"
  rcli --no-raw XRANGE hr:events - + >/dev/null # warm
  python3 - "$1" "$redis_port" <<'PY'
import subprocess, sys
acked = [l.strip() for l in open(sys.argv[1]) if l.strip()]
port = sys.argv[2]
out = subprocess.run(["redis-cli", "-p", port, "--raw", "XRANGE", "hr:events", "-", "+"],
                     capture_output=True, text=True, check=True).stdout.split("\n")
ids = set(out[i + 1] for i, f in enumerate(out[:-1]) if f == "event_id")
keys = 0
for k in range(0, len(acked), 1000):
    chunk = acked[k:k + 1000]
    r = subprocess.run(["redis-cli", "-p", port, "EXISTS"] + ["hr:evid:" + a for a in chunk],
                       capture_output=True, text=True, check=True).stdout
    keys += int(r.strip())
xlen = int(subprocess.run(["redis-cli", "-p", port, "XLEN", "hr:events"],
                          capture_output=True, text=True, check=True).stdout)
print(len(acked), sum(a in ids for a in acked), keys, xlen, len(ids - set(acked)))
PY
}
read -r acked in_stream keys xlen extra < <(lost_events "$work/acked-a.txt")
check "events: $acked acknowledged, $in_stream in the stream, $keys idempotency keys (0 lost)" \
  same "$acked" "$in_stream" "$keys"
check "events: XLEN $xlen = acknowledged $acked + written-but-unacknowledged $extra" \
  [ "$xlen" = $((acked + extra)) ]
check "every replica serves the published version $v2" served_v2

# Sticky variants: 300 users asked on each replica directly.
head -n 300 "$work/users.txt" >"$work/sticky.txt"
for n in 1 2 3; do
  python3 - "${rport[$n]}" "$key" "$work/sticky.txt" >"$work/variants-$n.txt" <<'PY'
import http.client, json, sys
conn = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=10)
hdr = {"Authorization": "Bearer " + sys.argv[2], "Content-Type": "application/json"}
for u in open(sys.argv[3]).read().split():
    conn.request("POST", "/recommend", json.dumps({"user_id": u, "k": 1}), hdr)
    r = conn.getresponse()
    body = r.read()
    v = json.loads(body)["variant"] if r.status == 200 else None
    print("%s/%s" % (v["experiment"], v["name"]) if v else "status-%d" % r.status)
PY
done
variants=$(sort "$work/variants-1.txt" | uniq -c | tr -s ' ' | tr '\n' ';')
check "each of 300 users gets the same variant on all 3 replicas ($variants)" \
  bash -c 'cmp -s "$0/variants-1.txt" "$0/variants-2.txt" && cmp -s "$0/variants-1.txt" "$0/variants-3.txt" && [ "$(sort -u "$0/variants-1.txt" | wc -l)" = 2 ] && [ "$(wc -l <"$0/variants-1.txt")" = 300 ]' "$work"

# ----------------------------------------------------------------- phase B
rate_b=$(( rate / 2 > 1 ? rate / 2 : 1 ))
pids_before="${rpid[*]}"
rcli DEL hr:events >/dev/null
load "$lb_port" "$rate_b" 30 b --conns 192 --acked "$work/acked-b.txt" \
  >"$work/phase-b.json" &
load_pid=$!
sleep 5 # let the load run before the outage (the load is the point)
rcli SHUTDOWN >/dev/null 2>&1; wait "$redis_pid" 2>/dev/null; redis_pid=""
echo "phase B: Redis stopped"
down_checks() {
  for n in 1 2 3; do
    ready "${rport[$n]}" || return 1
    curl -s "${auth[@]}" -d '{"user_id":"u1","k":3}' "127.0.0.1:${rport[$n]}/recommend" |
      grep -q '"degraded": *true' || return 1
    curl -s -D "$work/h$n" -o /dev/null "${auth[@]}" \
      -d '{"user_id":"u1","type":"click","item_id":"i1"}' "127.0.0.1:${rport[$n]}/event"
    head -1 "$work/h$n" | grep -q ' 503' && grep -qi '^retry-after:' "$work/h$n" || return 1
  done
}
wait_for "every replica degraded" 100 down_checks
check "Redis down: every replica ready, /recommend 200 degraded, /event 503 + Retry-After" down_checks
check "Redis down: /health/redis says 503 on every replica" bash -c '
  for p in "$@"; do [ "$(curl -s -o /dev/null -w "%{http_code}" "127.0.0.1:$p/health/redis")" = 503 ] || exit 1; done' _ \
  "${rport[1]}" "${rport[2]}" "${rport[3]}"
sleep 5 # an outage of some seconds under load
start_redis || die "redis did not start again"
echo "phase B: Redis started again"
up_checks() {
  for n in 1 2 3; do
    curl -s "${auth[@]}" -d '{"user_id":"u1","k":3}' "127.0.0.1:${rport[$n]}/recommend" |
      grep -q '"degraded": *false' || return 1
    [ "$(curl -s -o /dev/null -w '%{http_code}' "${auth[@]}" \
      -d '{"user_id":"u1","type":"view","item_id":"i1"}' "127.0.0.1:${rport[$n]}/event")" = 202 ] || return 1
  done
}
wait_for "recovery" 300 up_checks
check "Redis back: every replica answers /recommend not degraded and /event 202" up_checks
check "recovered without a restart (same replica processes)" [ "$pids_before" = "${rpid[*]}" ]
wait "$load_pid"; load_pid=""
echo "== phase B: $(cat "$work/phase-b.json")"
B="$work/phase-b.json"
check "phase B /recommend: 0 non-2xx, 0 connection errors ($(json "$B" 'd["recommend"]["status"]'))" \
  [ "$(json "$B" 'd["recommend"]["non2xx"] + d["recommend"]["conn_errors"] + d["recommend"]["timeouts"]')" = 0 ]
check "phase B /event: 503s during the outage ($(json "$B" 'd["event"]["status"]'))" \
  [ "$(json "$B" 'd["event"]["status"].get("503", 0)')" -gt 0 ]
read -r acked_b in_b keys_b xlen_b extra_b < <(lost_events "$work/acked-b.txt")
check "phase B events: $acked_b acknowledged, $in_b in the stream after the restart (0 lost)" \
  same "$acked_b" "$in_b" "$keys_b"

mkdir -p "$(dirname "$OUT")"
python3 - "$A" "$B" "$capacity" "$rate" "$acked" "$in_stream" "$keys" "$xlen" \
  "$variants" "$capacity_direct" >"$OUT" <<'PY'
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
print(json.dumps({"capacity_one_replica_behind_haproxy": int(sys.argv[3]),
                  "capacity_one_replica_direct": int(sys.argv[10]),
                  "rate": int(sys.argv[4]),
                  "phase_a": a, "phase_b": b,
                  "events_a": dict(zip(["acked", "in_stream", "keys", "xlen"],
                                       map(int, sys.argv[5:9]))),
                  "variants": sys.argv[9]}, indent=1))
PY
echo "figures: $OUT"
[ "$fail" = 0 ] || for n in 1 2 3; do echo "--- replica $n"; tail -5 "$work/r$n.log"; done
summary
