-- stamp_watch: an instance watches at `now`. A previous stamp older than `silence` means nobody
-- could hear workers since: the clock pauses for that gap, every deadline moves later by it
-- plus `grace`. Returns the gap ('0' when there was none).
local watched = P .. ':watched'
local now_s, silence, grace = arg(), tonumber(arg()), tonumber(arg())
local now = tonumber(now_s)
local last = tonumber(redis.call('GET', watched) or '')
redis.call('SET', watched, now_s)
if last == nil or now - last <= silence then
  return '0'
end
local by = now - last + grace
local entries = redis.call('ZRANGE', DEADLINES, 0, -1, 'WITHSCORES')
local batch = {}
for i = 1, #entries, 2 do
  batch[#batch + 1] = tonumber(entries[i + 1]) + by
  batch[#batch + 1] = entries[i]
  if #batch >= 1000 then
    redis.call('ZADD', DEADLINES, unpack(batch))
    batch = {}
  end
end
if #batch > 0 then
  redis.call('ZADD', DEADLINES, unpack(batch))
end
return tostring(now - last)
