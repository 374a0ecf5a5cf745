-- claim_run: lease the earliest ready entry. A leased entry stays queued, scored by its lease's
-- expiry, so an expired lease is claimable again with no sweeper.
-- Returns {job id or '', its ready time, the queue head's time after the claim or '', the job's
-- blob (nil if the job does not exist)}: the claimant reads the job next, so it comes along.
local now_s, lease_until, token = arg(), arg(), arg()
local head = redis.call('ZRANGE', RUNS, 0, 0, 'WITHSCORES')
if #head == 0 then
  return { '', '', '', false }
end
if tonumber(head[2]) > tonumber(now_s) then
  return { '', '', head[2], false }
end
redis.call('ZADD', RUNS, lease_until, head[1])
redis.call('HSET', LEASES, head[1], token)
local after = redis.call('ZRANGE', RUNS, 0, 0, 'WITHSCORES')
return { head[1], head[2], after[2] or '', redis.call('HGET', job_key(head[1]), 'd') }
