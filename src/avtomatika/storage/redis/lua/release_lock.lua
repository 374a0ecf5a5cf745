-- release_lock: delete the lock only if this owner holds it (compare-and-delete).
local lock, owner = key('lock', arg()), arg()
if redis.call('GET', lock) ~= owner then
  return 0
end
redis.call('DEL', lock)
return 1
