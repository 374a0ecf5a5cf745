-- renew_run: extend a lease still held by the token (compare-and-extend).
local job_id, token, lease_until = arg(), arg(), arg()
if redis.call('HGET', LEASES, job_id) ~= token then
  return 0
end
redis.call('ZADD', RUNS, 'XX', lease_until, job_id)
return 1
