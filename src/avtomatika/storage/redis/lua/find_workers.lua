-- find_workers: up to `limit` live workers with a skill (freshest liveness first), as HGETALL rows.
-- Index entries of workers gone before `gone_before` (their records have expired) are dropped.
local skill, now_s, gone_before, limit = arg(), arg(), arg(), arg()
local index = key('skill', skill)
redis.call('ZREMRANGEBYSCORE', index, '-inf', '(' .. gone_before)
local rows = {}
local ids = redis.call('ZREVRANGEBYSCORE', index, '+inf', now_s, 'LIMIT', 0, limit)
for _, id in ipairs(ids) do
  rows[#rows + 1] = redis.call('HGETALL', key('worker', id))
end
return rows
