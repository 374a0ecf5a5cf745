-- list_workers: every registered worker as HGETALL rows (administrative, not a hot path); ids
-- whose record has expired leave the set.
local rows = {}
for _, id in ipairs(redis.call('SMEMBERS', WORKERS)) do
  local row = redis.call('HGETALL', key('worker', id))
  if #row == 0 then
    redis.call('SREM', WORKERS, id)
  else
    rows[#rows + 1] = row
  end
end
return rows
