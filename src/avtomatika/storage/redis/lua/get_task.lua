-- get_task: one task as task_fields() gives it, then its job id and the job's blob. A task is
-- looked up alone to act on its job next (a result, a deadline): the job comes along.
local f = redis.call('HMGET', key('task', arg()), 'd', 's', 'w', 'pu', 'j')
local job = false
if f[5] then
  job = redis.call('HGET', job_key(f[5]), 'd')
end
return { f[1], f[2], f[3], f[4], f[5], job }
