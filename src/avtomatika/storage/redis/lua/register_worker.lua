-- register_worker: insert or replace a worker, keeping a stored reputation; returns the reputation.
-- The record blob is stored whole; heartbeat fields later overlay it as separate 'f:' fields.
local worker, blob, reputation, expires_at, retain_ms = arg(), arg(), arg(), arg(), arg()
local names = arg_list(1)
local wkey = key('worker', worker)
reputation = redis.call('HGET', wkey, 'rep') or reputation
unindex_worker(worker)
redis.call('DEL', wkey)
redis.call('HSET', wkey, 'd', blob, 'rep', reputation)
redis.call('SADD', WORKERS, worker)
index_worker(worker, names, expires_at)
retain_worker(worker, retain_ms)
redis.call('ZADD', DEADLINES, expires_at, 'worker:' .. worker)
return reputation
