-- peek_tasks: the worker's queued tasks in pop order, as task_fields() rows.
local worker, limit = arg(), tonumber(arg())
local rows = {}
for _, member in ipairs(redis.call('ZRANGE', key('worker-queue', worker), 0, limit - 1)) do
  rows[#rows + 1] = task_fields(task_of(member))
end
return rows
