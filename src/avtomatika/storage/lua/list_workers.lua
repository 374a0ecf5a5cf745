-- list_workers: every registered worker as HGETALL rows (administrative, not a hot path).
local rows = {}
for _, id in ipairs(redis.call('SMEMBERS', WORKERS)) do
  rows[#rows + 1] = redis.call('HGETALL', key('worker', id))
end
return rows
