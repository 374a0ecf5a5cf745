-- release_run: remove the entry if the token still holds it (compare-and-delete).
local job_id, token = arg(), arg()
release_lease(job_id, token)
return 1
