-- remove_worker: deregister a worker and remove its queued (in pop order) and running tasks,
-- returned as task_fields() rows so the caller can re-dispatch them (W-51: never silently lost).
-- Running tasks stay as cancelled tombstones, so a worker that comes back is told to stop them.
local worker, keep_ms, keep_until = arg(), arg(), arg()
local queue, running = key('worker-queue', worker), key('worker-running', worker)
local rows = {}
for _, member in ipairs(redis.call('ZRANGE', queue, 0, -1)) do
  local id = task_of(member)
  rows[#rows + 1] = task_fields(id)
  redis.call('DEL', key('task', id))
  redis.call('ZREM', DEADLINES, 'task:' .. id)
end
local busy = redis.call('SMEMBERS', running)
table.sort(busy)
for _, id in ipairs(busy) do
  local tkey = key('task', id)
  rows[#rows + 1] = task_fields(id)
  redis.call('HSET', tkey, 's', 'cancelled')
  redis.call('PEXPIRE', tkey, keep_ms)
  redis.call('ZADD', DEADLINES, keep_until, 'task:' .. id)
end
redis.call('DEL', queue, running)
unindex_worker(worker)
redis.call('DEL', key('worker', worker))
redis.call('SREM', WORKERS, worker)
redis.call('ZREM', DEADLINES, 'worker:' .. worker)
return rows
