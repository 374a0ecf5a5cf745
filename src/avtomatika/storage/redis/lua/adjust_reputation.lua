-- adjust_reputation: add a delta to a known worker's reputation, clamped to [0, 1].
local worker, delta = arg(), tonumber(arg())
local wkey = key('worker', worker)
local reputation = redis.call('HGET', wkey, 'rep')
if reputation then
  redis.call('HSET', wkey, 'rep', math.min(1, math.max(0, tonumber(reputation) + delta)))
end
return 1
