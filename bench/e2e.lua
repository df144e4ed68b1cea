-- bench/e2e.lua -- wrk script for bench/run_e2e.sh, in one of two modes:
--
--   rec    POST /recommend for a random one of the generated users
--          (u00001..uUSERS) with k 20 and a random request context: a
--          location and a mood of the values the generated data uses, and a
--          time (context.ts) somewhere in the day before NOW, so that the
--          hour and the time since the newest history item vary.
--   event  POST /event: a view or a click of a random user on a random
--          catalogue item (i00001..iITEMS) with a location, at server time,
--          each with its own event_id (NONCE-thread-counter), so that none
--          is a duplicate: NONCE must differ between wrk runs.
--
--   wrk -t1 -c32 -d10s --latency -s bench/e2e.lua URL -- rec USERS NOW [SEED]
--   wrk -t1 -c32 -d10s --latency -s bench/e2e.lua URL -- event USERS ITEMS NONCE
local locations = {"home", "work", "commute", "gym"}
local moods = {"happy", "calm", "sad", "energetic", "tired"}
local types = {"view", "click"}
local counter = 0
local mode, users, now, items, nonce, seq = "rec", 10000, 0, 100000, "0", 0

function setup(thread)
   counter = counter + 1
   thread:set("tid", counter)
end

function init(args)
   mode = args[1] or "rec"
   users = tonumber(args[2]) or 10000
   if mode == "event" then
      items = tonumber(args[3]) or 100000
      nonce = args[4] or tostring(os.time())
      math.randomseed(4000 + (tid or 0))
   else
      now = tonumber(args[3]) or os.time()
      math.randomseed(3000 + 100 * (tonumber(args[4]) or 0) + (tid or 0))
   end
end

local json = {["Content-Type"] = "application/json"}
-- hyperrec needs credentials for requests naming a user (bench/lib.sh)
if os.getenv("HR_BENCH_KEY") then
   json["Authorization"] = "Bearer " .. os.getenv("HR_BENCH_KEY")
end

function request()
   if mode == "event" then
      seq = seq + 1
      return wrk.format("POST", "/event", json, string.format(
         '{"user_id":"u%05d","item_id":"i%05d","type":"%s","event_id":"%s-%d-%d","context":{"location":"%s"}}',
         math.random(1, users), math.random(1, items), types[math.random(#types)],
         nonce, tid or 0, seq, locations[math.random(#locations)]))
   end
   return wrk.format("POST", "/recommend", json, string.format(
      '{"user_id":"u%05d","k":20,"context":{"ts":%d,"location":"%s","mood":"%s"}}',
      math.random(1, users), now - math.random(0, 86399),
      locations[math.random(#locations)], moods[math.random(#moods)]))
end
