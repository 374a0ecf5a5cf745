-- poll_task (one non-blocking attempt): stamp a registered worker's last poll, pop its first
-- task and mark it RUNNING.
-- Returns {blob or '', tasks still queued for the worker, task id or ''}.
local worker, now_s = arg(), arg()
local wkey = key('worker', worker)
if redis.call('EXISTS', wkey) == 1 then
  redis.call('HSET', wkey, 'lp', now_s)
end
local queue = key('worker-queue', worker)
local popped = redis.call('ZPOPMIN', queue)
if #popped == 0 then
  return { '', 0, '' }
end
local id = task_of(popped[1])
local tkey = key('task', id)
local f = redis.call('HMGET', tkey, 'd', 'et', 'rd')
start_task(tkey, id, worker, now_s, f[2], f[3])
return { f[1], redis.call('ZCARD', queue), id }
