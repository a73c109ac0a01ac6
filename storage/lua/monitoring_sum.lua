-- Today's figures, summed in Redis: a day hash holds a field per metric and quarter hour (a few
-- thousand on a busy number), and only the sums need to travel. KEYS: the day hashes.
-- ARGV: first bucket, last bucket, then the metrics kept as maxima. Returns metric, value, ...
local first, last = tonumber(ARGV[1]), tonumber(ARGV[2])
local maxima = {}
for i = 3, #ARGV do maxima[ARGV[i]] = true end
local sums, order = {}, {}
for _, key in ipairs(KEYS) do
  local flat = redis.call('HGETALL', key)
  for i = 1, #flat, 2 do
    local metric, bucket = string.match(flat[i], '^(.*):(%d+)$')
    local b = tonumber(bucket)
    if b and b >= first and b <= last then
      local v = tonumber(flat[i + 1])
      local old = sums[metric]
      if old == nil then
        order[#order + 1] = metric
        sums[metric] = v
      elseif maxima[metric] then
        if v > old then sums[metric] = v end
      else
        sums[metric] = old + v
      end
    end
  end
end
local out = {}
for _, metric in ipairs(order) do
  out[#out + 1] = metric
  out[#out + 1] = string.format('%d', sums[metric])
end
return out
