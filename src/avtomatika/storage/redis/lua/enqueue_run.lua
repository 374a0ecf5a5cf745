-- enqueue_run: queue a job's next step at a time, replacing any queued or leased entry.
local job_id, at, now_s = arg(), arg(), arg()
enqueue_run(job_id, at, tonumber(now_s))
flush_wakes()
return 1
