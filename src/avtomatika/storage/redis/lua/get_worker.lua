-- get_worker: the worker's hash as a flat list (a script, so every client returns the same shape).
return redis.call('HGETALL', key('worker', arg()))
