-- Undo a claim still held by the token: the entry becomes ready at the time given and claimants
-- are woken, so the step is not delayed by the lease. Used for a claim whose caller was cancelled
-- before it got the lease (ready again at its old time), and for a step a stopping instance
-- hands back unfinished (ready now).
local job_id, token, ready_at = arg(), arg(), arg()
if redis.call('HGET', LEASES, job_id) ~= token then
  return 0
end
redis.call('ZADD', RUNS, ready_at, job_id)
redis.call('HDEL', LEASES, job_id)
wake_runs = true
flush_wakes()
return 1
