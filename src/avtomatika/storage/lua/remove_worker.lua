-- remove_worker: deregister a worker and remove its queued (in pop order) and running tasks,
-- returned as task_fields() rows so the caller can re-dispatch them (W-51: never silently lost).
local worker = arg()
local queue, running = key('worker-queue', worker), key('worker-running', worker)
local ids = {}
for _, member in ipairs(redis.call('ZRANGE', queue, 0, -1)) do
  ids[#ids + 1] = task_of(member)
end
local busy = redis.call('SMEMBERS', running)
table.sort(busy)
for _, id in ipairs(busy) do
  ids[#ids + 1] = id
end
local rows = {}
for _, id in ipairs(ids) do
  rows[#rows + 1] = task_fields(id)
  redis.call('DEL', key('task', id))
  redis.call('ZREM', DEADLINES, 'task:' .. id)
end
redis.call('DEL', queue, running)
unindex_worker(worker)
redis.call('DEL', key('worker', worker))
redis.call('SREM', WORKERS, worker)
redis.call('ZREM', DEADLINES, 'worker:' .. worker)
return rows
