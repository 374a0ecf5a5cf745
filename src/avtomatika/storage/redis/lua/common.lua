-- Shared head of every script: argument reading, key names, wake-ups, run-queue and task helpers.
-- ARGV[1] is the key prefix; each script reads its own arguments in order with arg().
-- Record blobs are opaque here (W-11): only the plain fields kept beside them are read.
-- Numbers that must stay exact travel as the caller's strings; computed ones are passed to
-- redis.call as Lua numbers, which Redis formats without losing precision.

local P = ARGV[1]
local cursor = 1

local function arg()
  cursor = cursor + 1
  return ARGV[cursor]
end

-- A count followed by that many groups of `width` arguments.
local function arg_list(width)
  local items = {}
  for i = 1, tonumber(arg()) do
    local item = {}
    for j = 1, width do
      item[j] = arg()
    end
    items[i] = item
  end
  return items
end

local function key(namespace, id)
  return P .. ':' .. namespace .. ':' .. id
end

local function job_key(id)
  return P .. ':job:{' .. id .. '}'
end

local RUNS = P .. ':runs'
local LEASES = P .. ':run-leases'
local DEADLINES = P .. ':deadlines'
local SEQ = P .. ':seq'
local WORKERS = P .. ':workers'
local CHANNEL = P .. ':wake'

-- Queue members are a fixed-width hex sequence number followed by the task id; the score is
-- -priority. Equal priorities therefore pop in member order: pushes count up from the base,
-- requeues count down from it (ahead of every push, the latest requeue first).
local QUEUE_BASE = 2 ^ 50

local function queue_member(seq, id)
  return string.format('%016x', seq) .. id
end

local function task_of(member)
  return string.sub(member, 17)
end

-- Wake-ups are collected while a script runs and published once at its end.
local wake_runs = false
local wake_workers = {}

local function flush_wakes()
  if wake_runs then
    redis.call('PUBLISH', CHANNEL, 'r')
  end
  for worker in pairs(wake_workers) do
    redis.call('PUBLISH', CHANNEL, 't' .. worker)
  end
end

-- Enqueue a job's next step at `at` (a string), replacing a queued or leased entry.
-- Claimants are woken when the entry is ready now or became the earliest one (timers).
local function enqueue_run(id, at, now)
  redis.call('ZADD', RUNS, at, id)
  redis.call('HDEL', LEASES, id)
  if not wake_runs then
    wake_runs = tonumber(at) <= now or redis.call('ZRANGE', RUNS, 0, 0)[1] == id
  end
end

local function release_lease(id, token)
  if redis.call('HGET', LEASES, id) == token then
    redis.call('ZREM', RUNS, id)
    redis.call('HDEL', LEASES, id)
  end
end

local function set_task_deadline(id, at)
  if at == '' then
    redis.call('ZREM', DEADLINES, 'task:' .. id)
  else
    redis.call('ZADD', DEADLINES, at, 'task:' .. id)
  end
end

-- Take a task off its worker's queue or running set; false if there is no such task.
local function detach_task(tkey, id)
  local f = redis.call('HMGET', tkey, 's', 'w', 'm')
  if not f[1] then
    return false
  end
  if f[1] == 'queued' then
    redis.call('ZREM', key('worker-queue', f[2]), f[3])
  elseif f[1] == 'running' then
    redis.call('SREM', key('worker-running', f[2]), id)
  end
  return true
end

-- Mark a task RUNNING on `worker` and move its deadline to min(now + execution timeout, result deadline).
local function start_task(tkey, id, worker, now_s, timeout, result_deadline)
  local deadline = tonumber(now_s) + tonumber(timeout)
  if result_deadline ~= '' then
    deadline = math.min(deadline, tonumber(result_deadline))
  end
  redis.call('HSET', tkey, 's', 'running', 'w', worker, 'pu', now_s)
  redis.call('SADD', key('worker-running', worker), id)
  redis.call('ZADD', DEADLINES, deadline, 'task:' .. id)
end

local function drop_task(id)
  local tkey = key('task', id)
  if detach_task(tkey, id) then
    redis.call('DEL', tkey)
  end
  redis.call('ZREM', DEADLINES, 'task:' .. id)
end

local function cancel_task(id, keep_ms, keep_until)
  local tkey = key('task', id)
  if detach_task(tkey, id) then
    redis.call('HSET', tkey, 's', 'cancelled')
    redis.call('PEXPIRE', tkey, keep_ms)
    redis.call('ZADD', DEADLINES, keep_until, 'task:' .. id)
  end
end

-- t = {id, worker, score, queued deadline, execution timeout, result deadline, blob, job id}
local function push_task(t)
  local id, worker, score = t[1], t[2], t[3]
  local tkey = key('task', id)
  if detach_task(tkey, id) then
    redis.call('DEL', tkey)
  end
  local member = queue_member(QUEUE_BASE + redis.call('INCR', SEQ), id)
  redis.call('HSET', tkey, 'd', t[7], 's', 'queued', 'w', worker, 'p', score, 'm', member,
    'qd', t[4], 'et', t[5], 'rd', t[6], 'j', t[8])
  redis.call('ZADD', key('worker-queue', worker), score, member)
  set_task_deadline(id, t[4])
  wake_workers[worker] = true
end

-- The fields a caller needs to rebuild a task record: blob, state, owner, pick-up time.
local function task_fields(id)
  return redis.call('HMGET', key('task', id), 'd', 's', 'w', 'pu')
end

-- A client's job index keeps terminal jobs until they expire; expired entries are removed a
-- batch at a time whenever the client's jobs are listed or one of them ends.
local TRIM_BATCH = 100

local function trim_client(index, expiring, now_ms)
  local gone = redis.call('ZRANGEBYSCORE', expiring, '-inf', now_ms, 'LIMIT', 0, TRIM_BATCH)
  if #gone > 0 then
    redis.call('ZREM', index, unpack(gone))
    redis.call('ZREM', expiring, unpack(gone))
  end
end

local function unindex_worker(worker)
  local skills = key('worker-skills', worker)
  for _, name in ipairs(redis.call('SMEMBERS', skills)) do
    redis.call('ZREM', key('skill', name), worker)
  end
  redis.call('DEL', skills)
end

-- Skill indexes are scored by the worker's liveness deadline, so lookups skip expired workers.
local function index_worker(worker, names, expires_at)
  local skills = key('worker-skills', worker)
  for _, item in ipairs(names) do
    redis.call('SADD', skills, item[1])
    redis.call('ZADD', key('skill', item[1]), expires_at, worker)
  end
end

-- A gone worker's record and skill list expire by themselves (at `until_ms`, the liveness
-- deadline plus the retention), even if no watcher ever removes them; index entries naming it
-- are dropped by the lookups that meet them.
local function retain_worker(worker, until_ms)
  redis.call('PEXPIREAT', key('worker', worker), until_ms)
  redis.call('PEXPIREAT', key('worker-skills', worker), until_ms)
end
