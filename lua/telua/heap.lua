--- A binary heap of timed events: earliest `at` first, ties in the order
-- they were pushed. The sandbox's callbacks and the sender's schedule
-- estimate (`telua.sender.schedule`) keep their events in one.
--
--     local h = require("telua.heap").new()
--     h:push{ at = 2.5, what = "b" }; h:push{ at = 1, what = "a" }
--     h:pop().what --> "a"
--
-- @module telua.heap

local setmetatable, floor = setmetatable, math.floor

local _M = { _VERSION = "0.1.0" }

local Heap = {}
Heap.__index = Heap

--- An empty heap.
function _M.new() return setmetatable({ n = 0, seq = 0 }, Heap) end

local function before(a, b) return a.at < b.at or (a.at == b.at and a.seq < b.seq) end

--- Adds an event (a table with `at`, a number; `seq` is set on it).
function Heap:push(ev)
  self.seq = self.seq + 1
  ev.seq = self.seq
  local n = self.n + 1
  self.n = n
  self[n] = ev
  while n > 1 do
    local p = floor(n / 2)
    if before(self[n], self[p]) then self[n], self[p] = self[p], self[n]; n = p else break end
  end
end

--- The earliest event, left in the heap (nil when empty).
function Heap:peek() return self[1] end

--- Takes the earliest event out (nil when empty).
function Heap:pop()
  local top, n = self[1], self.n
  if n == 0 then return nil end
  self[1] = self[n]
  self[n] = nil
  n = n - 1
  self.n = n
  local i = 1
  while true do
    local l, r, m = 2 * i, 2 * i + 1, i
    if l <= n and before(self[l], self[m]) then m = l end
    if r <= n and before(self[r], self[m]) then m = r end
    if m == i then break end
    self[i], self[m] = self[m], self[i]
    i = m
  end
  return top
end

return _M
