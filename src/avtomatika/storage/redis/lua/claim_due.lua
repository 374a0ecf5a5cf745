-- claim_due: due deadline keys, earliest first, each re-armed so a crash makes it due again.
local now_s, limit, rearm_at = arg(), arg(), arg()
local due = redis.call('ZRANGEBYSCORE', DEADLINES, '-inf', now_s, 'LIMIT', 0, limit)
-- Re-armed only after collecting, so a zero lease cannot return a key twice.
for _, member in ipairs(due) do
  redis.call('ZADD', DEADLINES, rearm_at, member)
end
return due
