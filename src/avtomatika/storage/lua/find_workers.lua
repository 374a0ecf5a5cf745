-- find_workers: up to `limit` live workers with a skill (freshest liveness first), as HGETALL rows.
local skill, now_s, limit = arg(), arg(), arg()
local rows = {}
local ids = redis.call('ZREVRANGEBYSCORE', key('skill', skill), '+inf', now_s, 'LIMIT', 0, limit)
for _, id in ipairs(ids) do
  rows[#rows + 1] = redis.call('HGETALL', key('worker', id))
end
return rows
