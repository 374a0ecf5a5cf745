-- steal_task: hand a task still queued on one worker to another as RUNNING; returns its blob.
local id, from, to, now_s = arg(), arg(), arg(), arg()
local tkey = key('task', id)
local f = redis.call('HMGET', tkey, 's', 'w', 'm', 'd', 'et', 'rd')
if f[1] ~= 'queued' or f[2] ~= from then
  return false
end
redis.call('ZREM', key('worker-queue', from), f[3])
start_task(tkey, id, to, now_s, f[5], f[6])
return f[4]
