-- requeue_task: put a RUNNING task back at the head of its priority on its worker's queue.
local id = arg()
local tkey = key('task', id)
local f = redis.call('HMGET', tkey, 's', 'w', 'p', 'qd')
if f[1] ~= 'running' then
  return 0
end
local member = queue_member(QUEUE_BASE - redis.call('INCR', SEQ), id)
redis.call('SREM', key('worker-running', f[2]), id)
redis.call('HSET', tkey, 's', 'queued', 'm', member)
redis.call('HDEL', tkey, 'pu')
redis.call('ZADD', key('worker-queue', f[2]), f[3], member)
set_task_deadline(id, f[4])
wake_workers[f[2]] = true
flush_wakes()
return 1
