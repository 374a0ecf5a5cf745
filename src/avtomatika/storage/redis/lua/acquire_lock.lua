-- acquire_lock: take a free lock (SET NX PX) or extend one this owner holds (compare-and-extend).
local lock, owner, ttl_ms = key('lock', arg()), arg(), arg()
if redis.call('GET', lock) == owner then
  redis.call('PEXPIRE', lock, ttl_ms)
  return 1
end
if redis.call('SET', lock, owner, 'NX', 'PX', ttl_ms) then
  return 1
end
return 0
