-- list_jobs: one page of a client's job blobs, newest first, after dropping expired entries.
local client, first, last, now_ms = arg(), arg(), arg(), arg()
local index, expiring = key('client-jobs', client), key('client-expiring', client)
trim_client(index, expiring, now_ms)
local blobs = {}
for _, id in ipairs(redis.call('ZREVRANGE', index, first, last)) do
  local blob = redis.call('HGET', job_key(id), 'd')
  if blob then
    blobs[#blobs + 1] = blob
  end
end
return blobs
