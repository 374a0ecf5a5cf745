-- heartbeat_worker: overlay the fields the worker sent (each an opaque MessagePack value, never
-- merged here: W-11), refresh its liveness everywhere; returns the hash, or nil if unknown.
local worker, expires_at, retain_ms, reindex = arg(), arg(), arg(), arg() == '1'
local fields = arg_list(2)
local names = arg_list(1)
local wkey = key('worker', worker)
if redis.call('EXISTS', wkey) == 0 then
  return false
end
local hset = { 'HSET', wkey }
for _, field in ipairs(fields) do
  hset[#hset + 1] = 'f:' .. field[1]
  hset[#hset + 1] = field[2]
end
redis.call(unpack(hset))
if reindex then
  unindex_worker(worker)
  index_worker(worker, names, expires_at)
else
  for _, name in ipairs(redis.call('SMEMBERS', key('worker-skills', worker))) do
    redis.call('ZADD', key('skill', name), expires_at, worker)
  end
end
retain_worker(worker, retain_ms)
redis.call('ZADD', DEADLINES, expires_at, 'worker:' .. worker)
return redis.call('HGETALL', wkey)
