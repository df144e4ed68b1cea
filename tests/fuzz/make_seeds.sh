#!/usr/bin/env bash
# make_seeds.sh -- (re)generate tests/fuzz/corpus/ from this tree's build:
# request bodies, config files and environment lines, zone files from the
# system's tzdata (public domain), and two tiny models (iALS and the
# sequential model with context, attributes and an index) trained here on
# data generated below, packed into fuzz_model's record format. Run from
# the repository root after `make`; the output is committed.
set -euo pipefail

out=tests/fuzz/corpus
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"/{api,auth,config,model,index,tzif}

# ---- api: selector byte (even /recommend, 04 /similar, 08 /popular, odd
# /event; 10 PUT /items with the id before a newline), then the body
api() { printf "\\x$1" >"$out/api/$2"; printf '%s' "$3" >>"$out/api/$2"; }
api 00 rec-min '{}'
api 00 rec-user '{"user_id":"u1","k":5}'
api 00 rec-full '{"user_id":"u1","session_id":"s9","k":20,"explain":true,"history":["i1","i2",3],"exclude":["i4"],"filters":{"genre":["a","b"],"year":"1999"},"context":{"tz":"Europe/Paris","location":"home","mood":"happy","device":"phone","ts":1767225000,"extra":{"weather":"rain"}},"user_attrs":{"age":31,"gender":"f"}}'
api 00 rec-anon-history '{"history":["i9","i8"],"k":3,"context":{"tz":"UTC+05:30"}}'
api 02 rec-unknown-ignored '{"user_id":"u2","whatever":[1,2,{"a":null}]}'
api 00 rec-bad-k '{"user_id":"u1","k":0}'
api 04 sim-min '{"item_id":"i1"}'
api 04 sim-full '{"item_id":7,"user_id":"u1","k":20,"exclude":["i4"],"filters":{"genre":["a","b"]}}'
api 04 sim-bad '{"item_id":"","history":["i1"]}'
api 08 pop-min '{}'
api 08 pop-full '{"k":20,"context":{"location":"gym","tz":"Europe/Paris","extra":{"weather":"rain"}},"filters":{"genre":["a"]},"exclude":["i4"],"user_attrs":{"age":31}}'
api 08 pop-trending '{"k":5,"trending":true,"exclude":["i4"]}'
api 08 pop-bad '{"trending":true,"context":{"mood":"calm"}}'
api 10 item-hide 'i00042
{"hidden":true}'
api 10 item-bad 'i1
{"hidden":"yes","why":1}'
api 01 ev-one '{"user_id":"u1","item_id":"i1","type":"click"}'
api 01 ev-full '{"user_id":"u1","item_id":"i1","type":"purchase","value":12.5,"event_id":"e-1","recommendation_id":"r.ab.exp1.v2.123","ts":1767225000,"context":{"location":"work","mood":"sad","device":"desktop","tz":"America/New_York"}}'
api 01 ev-batch '{"events":[{"user_id":"u1","item_id":"i1","type":"view"},{"user_id":"u2","type":"context","context":{"mood":"calm"}},{"user_id":3,"item_id":4,"type":"click","ts":1767220000}]}'
api 01 ev-bad-ts '{"user_id":"u1","item_id":"i1","type":"click","ts":12}'
api 03 ev-unknown-ignored '{"user_id":"u1","item_id":"i1","type":"click","extra":true}'
api 00 rec-deep '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]'

# ---- auth: selector byte (bit 0: X-API-Key, else Authorization), then the
# value; the keys and secrets are fuzz_auth.c's, the time its NOW
python3 - "$out/auth" <<'PY'
import base64, hashlib, hmac, os, sys
d = sys.argv[1]
now = 1767225600
def tok(secret, user, exp):
    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    body = "hrt1.%s.%d" % (b64(user.encode()), exp)
    return body + "." + b64(hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest())
seeds = {
    "token-one": b"\x00Bearer " + tok("fuzz-secret-one-0123456789abcdefghij", "u1", now + 3600).encode(),
    "token-two-utf8": b"\x00Bearer " + tok("fuzz-secret-two-0123456789abcdefghij", "us\u00e9r-42", now + 60).encode(),
    "token-expired": b"\x00Bearer " + tok("fuzz-secret-one-0123456789abcdefghij", "u1", now - 1).encode(),
    "key-one": b"\x00Bearer hrk_fuzz_key_number_one",
    "key-two-header": b"\x01hrk_fuzz_key_number_two",
    "basic": b"\x00Basic dXNlcjpwYXNz",
}
for name, v in seeds.items():
    open(os.path.join(d, name), "wb").write(v)
PY

# ---- config: selector byte (even JSON file, odd environment lines)
{ printf '\x00'; cat config/hyperrec.json; } >"$out/config/shipped.json"
printf '\x00{"slots":["default","b"],"models_pin":["b=3"],"experiments":[{"name":"exp1","salt":"s","variants":[{"name":"control","weight":1},{"name":"v2","weight":1,"slot":"b","candidates":50}]}],"http":{"cors_origins":["https://shop.example"]},"admin":{"token":"0123456789abcdef0123"}}' >"$out/config/experiments.json"
printf '\x00{"recommend":{"default_k":50,"max_k":20}}' >"$out/config/bad-k.json"
printf '\x01REDIS=127.0.0.1:6380\nHTTP_MAX_CONNECTIONS=100\nSLOTS=a,b\nMODELS_PIN=a=2\nLOG_LEVEL=debug\nEXPERIMENTS=[{"name":"e","salt":"x1","variants":[{"name":"c","weight":1}]}]' >"$out/config/env"
printf '\x01RECOMMEND_MAX_K=abc\nNOPE=1' >"$out/config/env-bad"

# ---- tzif: zone files as they are
for z in Europe/Paris America/New_York Asia/Kolkata Australia/Lord_Howe UTC; do
  cp "/usr/share/zoneinfo/$z" "$out/tzif/$(echo "$z" | tr / _)"
done

# ---- two tiny models
awk 'BEGIN {
  srand(7); print "user_id,item_id,rating,ts,mood,location";
  split("happy sad calm", moods, " "); split("home work", locs, " ");
  t = 1700000000;
  for (e = 0; e < 400; e++) {
    u = int(rand() * 30); i = int(rand() * 40); t += 60;
    printf "u%d,i%d,%d,%d,%s,%s\n", u, i, 1 + int(rand() * 5), t,
           moods[1 + (u + i) % 3], locs[1 + i % 2]
  } }' >"$tmp/events.csv"
awk 'BEGIN { print "item_id,genre"; split("a b c d", g, " ");
  for (i = 0; i < 42; i++) printf "i%d,%s\n", i, g[1 + i % 4] }' >"$tmp/items.csv"
awk 'BEGIN { print "user_id,age,gender";
  for (u = 0; u < 30; u++) printf "u%d,%d,%s\n", u, 18 + u, (u % 2 ? "f" : "m") }' >"$tmp/users.csv"
bin/hyperrec-train fit --data "$tmp/events.csv" --items "$tmp/items.csv" \
  --users "$tmp/users.csv" --out "$tmp/models/ials" --factors 8 --iters 2 \
  --ann-m 4 --ann-efc 16 --quiet >/dev/null
bin/hyperrec-train fit --data "$tmp/events.csv" --items "$tmp/items.csv" \
  --users "$tmp/users.csv" --out "$tmp/models/seq" --factors 8 --iters 2 \
  --ann-m 4 --ann-efc 16 --quiet --kind seq --dim 8 --len 8 --blocks 1 \
  --ffn 8 --epochs 1 --long-term 2 >/dev/null
for kind in ials seq; do
  v=$(ls "$tmp/models/$kind" | sort -n | tail -n 1)
  python3 tests/fuzz/pack_model.py "$tmp/models/$kind/$v" >"$out/model/$kind"
  cp "$tmp/models/$kind/$v/index.bin" "$out/index/$kind"
done
ls -l "$out"/*
