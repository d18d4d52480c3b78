-- The loop of bench/client_lua.lua and of its nginx row: create_many over
-- lists of 2,000 with `conc` requests in flight, every message checked
-- (E.164, segments) before it leaves. Returns created, failed, seconds.
return function(client, n, conc, now)
  local function batch(from, count)
    local list = {}
    for i = from, from + count - 1 do
      list[#list + 1] = { to = "+14155550" .. tostring(100 + i % 900), from = "+15005550006",
                          body = "Your code is " .. tostring(100000 + i) }
    end
    return client.messages.create_many(list)
  end
  batch(0, conc) -- warm up the connections
  local ok, failed = 0, 0
  local t0 = now()
  local i = 0
  while i < n do
    local k = math.min(2000, n - i)
    for _, r in ipairs(batch(i, k)) do if r[1] then ok = ok + 1 else failed = failed + 1 end end
    i = i + k
  end
  return ok, failed, now() - t0
end
