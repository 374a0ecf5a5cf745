-- Undo a claim whose caller was cancelled before it got the lease: the entry becomes ready
-- again at its old time and claimants are woken, so the step is not delayed by the lease.
local job_id, token, ready_at = arg(), arg(), arg()
if redis.call('HGET', LEASES, job_id) ~= token then
  return 0
end
redis.call('ZADD', RUNS, ready_at, job_id)
redis.call('HDEL', LEASES, job_id)
wake_runs = true
flush_wakes()
return 1
