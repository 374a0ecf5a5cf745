-- create_job and commit: store a job (new, or compare-and-set on its version) and apply its
-- effects in the documented order. Every argument is read and every check made before the
-- first write, because Redis does not roll back a script that fails half-way.

local mode = arg() -- 'create' or 'commit'
local job_id = arg()
local expected = arg()
local token = arg() -- this change's own token: sent again after a lost reply, it is found done
local claim = arg() -- a creation's idempotency key ('' for none), its fingerprint and TTL
local fingerprint = arg()
local claim_ms = arg()
local version = arg()
local client = arg()
local blob = arg()
local ttl_ms = arg() -- '' unless the job is terminal
local expire_ms = arg()
local now_s = arg()
local now_ms = arg()
local lease = arg()
local task_keep_ms = arg()
local task_keep_until = arg()
local run_at = arg()
local drops = arg_list(1)
local cancels = arg_list(1)
local pushes = arg_list(8)
local children = arg_list(4) -- id, client, blob, ttl_ms
local wakes = arg_list(1)
local now = tonumber(now_s)

local was_terminal = false
if mode == 'create' then
  if redis.call('EXISTS', job_key(job_id)) == 1 then
    return redis.call('HGET', job_key(job_id), 'ct') == token and 1 or 0
  end
  if claim ~= '' then
    local holder = redis.call('HMGET', key('idempotency', claim), 'j', 'f')
    if holder[1] then
      return { 'claimed', holder[1], holder[2] }
    end
  end
else
  local stored = redis.call('HMGET', job_key(job_id), 'v', 't', 'ct')
  if stored[1] ~= expected then
    return (stored[1] == version and stored[3] == token) and 1 or 0
  end
  was_terminal = stored[2] == '1'
end

local seen = { [job_id] = true }
for _, child in ipairs(children) do
  local id = child[1]
  if seen[id] or redis.call('EXISTS', job_key(id)) == 1 then
    return { 'duplicate', id }
  end
  seen[id] = true
end

-- Once every job of a client is terminal, its index and expiry set expire with its last job.
local function expire_client_keys(index, expiring)
  trim_client(index, expiring, now_ms)
  if redis.call('ZCARD', index) <= redis.call('ZCARD', expiring) then
    local last = redis.call('ZRANGE', expiring, -1, -1, 'WITHSCORES')[2]
    if last then
      redis.call('PEXPIREAT', index, last)
      redis.call('PEXPIREAT', expiring, last)
    end
  end
end

local function store_job(id, owner, ver, data, ttl, fresh, terminal_before)
  local jkey = job_key(id)
  local index, expiring = key('client-jobs', owner), key('client-expiring', owner)
  if fresh then
    redis.call('ZADD', index, redis.call('INCR', SEQ), id)
  end
  if ttl == '' then
    redis.call('HSET', jkey, 'v', ver, 'd', data)
    if fresh or terminal_before then
      redis.call('PERSIST', index)
      redis.call('PERSIST', expiring)
    end
    if terminal_before then
      redis.call('HDEL', jkey, 't')
      redis.call('PERSIST', jkey)
      redis.call('ZREM', expiring, id)
    end
    return
  end
  redis.call('HSET', jkey, 'v', ver, 'd', data, 't', '1')
  redis.call('PEXPIRE', jkey, ttl)
  redis.call('ZADD', expiring, expire_ms, id)
  expire_client_keys(index, expiring)
end

store_job(job_id, client, version, blob, ttl_ms, mode == 'create', was_terminal)
redis.call('HSET', job_key(job_id), 'ct', token)
if mode == 'create' then
  enqueue_run(job_id, now_s, now)
  if claim ~= '' then
    local ikey = key('idempotency', claim)
    redis.call('HSET', ikey, 'j', job_id, 'f', fingerprint)
    redis.call('PEXPIRE', ikey, claim_ms)
  end
end
if lease ~= '' then
  release_lease(job_id, lease)
end
for _, item in ipairs(drops) do
  drop_task(item[1])
end
for _, item in ipairs(cancels) do
  cancel_task(item[1], task_keep_ms, task_keep_until)
end
for _, task in ipairs(pushes) do
  push_task(task)
end
for _, child in ipairs(children) do
  store_job(child[1], child[2], '1', child[3], child[4], true, false)
  enqueue_run(child[1], now_s, now)
end
if run_at ~= '' then
  enqueue_run(job_id, run_at, now)
end
for _, item in ipairs(wakes) do
  enqueue_run(item[1], now_s, now)
end
flush_wakes()
return 1
