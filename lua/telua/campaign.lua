--- `telua campaign`: one template to every row of a CSV file, paced, durable, resumable.
--
--     telua campaign --csv FILE --template NAME [--from NUMBER | --messaging-service SID]
--                    [--rate MPS] [--dry-run] [--store sqlite:FILE] [--templates DIR]
--                    [--region CC] [--name NAME] [--price USD] [--no-wait]
--                    [--status-callback URL] [--wait-delivery SECONDS]
--                    [--send-rates SPEC] [--quiet-hours FROM-TO | off] [--max-per-day N]
--
-- The CSV's first line names the columns (RFC 4180: quoted fields, `""`
-- inside quotes, CRLF or LF). `phone` (or `to`) is the recipient; `locale`
-- picks the template's locale; every other column is a template variable.
-- Each row is rendered, its number put in E.164 (`--region` for national
-- numbers), checked against the opt-out list, and its segments counted;
-- rows that fail are reported with their line number and left out.
--
-- Then every message is queued in the host's outbox (SQLite, committed in
-- batches with `synchronous = FULL`, so a queued message survives a crash)
-- with the key `campaign:NAME:NUMBER`: running the same command again after
-- an interruption queues only what is missing, and a number gets one
-- message per campaign (a repeated row is reported and sent once).
-- The running host (`telua serve` with `TWILIO_ACCOUNT_SID` and the same
-- store) sends them at `--rate` messages per second, evenly spaced, and
-- checks opt-outs again at send time. This command then shows progress
-- (a bar on a terminal, a plain line every few seconds otherwise: sent,
-- delivered, failed, rate, ETA) until nothing is left to send, and prints a
-- summary with the segments and the estimated cost (`--price` USD per
-- segment; default 0.0083, Twilio's US list price per SMS segment in 2026).
-- With `--status-callback URL` (the host's status path, e.g.
-- `https://example.com/status/messages`; default `TELUA_STATUS_CALLBACK`)
-- Twilio's delivery receipts reach the host's message log, and the command
-- waits up to `--wait-delivery` seconds (default 30) after the last send
-- for them, so the summary counts delivered and undelivered messages.
-- `--dry-run` renders and checks everything, queues nothing, and reports
-- what would be sent.
--
-- The time it takes is estimated from the sender's own pacing
-- (`telua.sender.schedule`: the sender type's rate and the account's, as
-- the host's `--send-rates` sets them and `--send-rates` here repeats, the
-- campaign's `--rate`, the quiet hours), and the progress ETA is the rest
-- of that schedule. Quiet hours are on by default for a campaign: each
-- message carries them (`--quiet-hours`, else the template's
-- `quiet_hours`, else 21:00-08:00, the TCPA's) and the sender holds it
-- while the recipient's local time is inside them in any zone their number
-- may be in (`telua.quiet`); the report says how many wait and until when.
-- `--max-per-day N` caps the messages a recipient gets a day.
--
-- @module telua.campaign

local core = require "telua.core"
local e164 = require "telua.e164"
local quiet = require "telua.quiet"
local sender_mod = require "telua.sender"
local store_mod = require "telua.store"
local templates_mod = require "telua.templates"

local pairs, ipairs, tostring, tonumber, format, concat, floor, max =
  pairs, ipairs, tostring, tonumber, string.format, table.concat, math.floor, math.max

local _M = { _VERSION = "0.1.0", PRICE_PER_SEGMENT = 0.0083 }

--- How long before its place in a paced campaign's schedule a row is due
-- (seconds): the sender then holds its slot (it reserves up to 1 s ahead).
_M.SCHEDULE_LEAD = 0.5

--- Parses CSV text (RFC 4180). Returns a list of records (lists of
-- fields) with the line each starts on, or `nil, message`.
function _M.parse_csv(text)
  local rows, lines = {}, {}
  local i, n, line = 1, #text, 1
  if text:sub(1, 3) == "\239\187\191" then i = 4 end -- UTF-8 BOM
  while i <= n do
    local row, start_line = {}, line
    while true do
      local field
      if text:sub(i, i) == '"' then
        local buf, j = {}, i + 1
        while true do
          local q = text:find('"', j, true)
          if not q then return nil, format("line %d: a quoted field is not closed", start_line) end
          local chunk = text:sub(j, q - 1)
          buf[#buf + 1] = chunk
          line = line + select(2, chunk:gsub("\n", ""))
          if text:sub(q + 1, q + 1) == '"' then
            buf[#buf + 1] = '"'
            j = q + 2
          else
            i = q + 1
            break
          end
        end
        field = concat(buf)
        local c = text:sub(i, i)
        if c ~= "," and c ~= "\r" and c ~= "\n" and c ~= "" then
          return nil, format("line %d: text after a closing quote", line)
        end
      else
        local e = text:find("[,\r\n]", i) or (n + 1)
        field = text:sub(i, e - 1)
        i = e
      end
      row[#row + 1] = field
      local c = text:sub(i, i)
      if c == "," then
        i = i + 1
      else
        if c == "\r" then i = i + 1 end
        if text:sub(i, i) == "\n" then i = i + 1 end
        line = line + 1
        break
      end
    end
    if not (#row == 1 and row[1] == "") then -- blank lines
      rows[#rows + 1] = row
      lines[#rows] = start_line
    end
  end
  return rows, lines
end

local USAGE = [[
usage: telua campaign --csv FILE --template NAME (--from NUMBER | --messaging-service SID) [options]

Renders the template for every row of the CSV (a 'phone' or 'to' column; the other
columns are the template's variables), checks each row (E.164, opt-outs, segments),
queues the messages in the store's outbox for a running `telua serve`, and follows
their progress.

  --csv FILE                the recipients, one per row, with a header row
  --template NAME           a template of the templates folder
  --from NUMBER             the sender (a number, short code, whatsapp:+N or alphanumeric ID)
  --messaging-service SID   send through a Messaging Service (MG...) instead
  --templates DIR           the templates folder (default rules/templates)
  --store SPEC              the store the host's sender reads (default sqlite:var/telua.db)
  --region CC               the region of numbers written without +country (e.g. US)
  --rate MPS                schedule the rows at MPS messages a second
  --send-rates SPEC         the host's pacing (its --send-rates; default
                            long_code=1,toll_free=3,short_code=100,whatsapp=10,account=2000),
                            for the estimate of the time
  --quiet-hours FROM-TO     hold each message while the recipient's local time is inside
                            FROM-TO in any zone their number may be in (default the template's
                            quiet_hours, else 21:00-08:00, the TCPA's hours; "off" for none)
  --max-per-day N           at most N messages a day to one recipient (with any other sends)
  --name NAME               the campaign's name (default CSV name:template); a second run with
                            the same name queues only the rows not yet queued
  --price USD               price of one segment for the estimate (default 0.0083)
  --status-callback URL     Twilio's status callbacks for the delivery figures (default
                            $TELUA_STATUS_CALLBACK)
  --wait-delivery SECONDS   with a status callback, how long to wait for final statuses once
                            everything is sent (default 30)
  --dry-run                 check and estimate; queue nothing
  --no-wait                 queue and exit, without following the progress
  -h, --help                this text]]

local function usage()
  return USAGE
end

local FLAGS = { ["dry-run"] = true, ["no-wait"] = true, help = true }

local KNOWN_OPTIONS = {}
for k in USAGE:gmatch("\n  %-%-([%w%-]+)") do KNOWN_OPTIONS[k] = true end
KNOWN_OPTIONS.help = true

local function parse_args(argv)
  local a = {}
  local i = 1
  while i <= #argv do
    local k = argv[i]:match("^%-%-([%w%-]+)$")
    if argv[i] == "-h" then k = "help" end
    if not k then return nil, "unexpected argument " .. argv[i] end
    if not KNOWN_OPTIONS[k] then return nil, "unknown option " .. argv[i] .. " (telua campaign --help lists them)" end
    if FLAGS[k] then
      a[k] = true
      i = i + 1
    else
      if argv[i + 1] == nil then return nil, "--" .. k .. " needs a value" end
      a[k] = argv[i + 1]
      i = i + 2
    end
  end
  return a
end

-- Renders and checks every row. Returns the plan:
-- { messages = { {params, opts, line} ... }, problems = { {line, why} }, ... }
local function plan(a, set, store, csv_rows, lines)
  local header = csv_rows[1]
  local col = {}
  for j, h in ipairs(header) do col[h:lower():gsub("^%s+", ""):gsub("%s+$", "")] = j end
  local phone_col = col.phone or col.to or col.number
  if not phone_col then return nil, "the CSV needs a 'phone' (or 'to') column" end
  local sender = a.from or a["messaging-service"]
  local whatsapp = sender:sub(1, 9) == "whatsapp:"
  local out = { messages = {}, problems = {}, opted_out = 0, invalid = 0, segments = 0,
                encodings = {}, warnings = {}, rows = #csv_rows - 1, seen = {} }
  for r = 2, #csv_rows do
    local row, line = csv_rows[r], lines[r]
    local vars = {}
    for j, h in ipairs(header) do vars[h] = row[j] or "" end
    local raw = row[phone_col] or ""
    local num, why = e164.normalize(raw, a.region)
    if not num then
      out.invalid = out.invalid + 1
      out.problems[#out.problems + 1] = { line, format("%s is not a valid number (%s)", raw, tostring(why)) }
    else
      local to = whatsapp and ("whatsapp:" .. num) or num
      if store and store:is_opted_out(sender, to) then
        out.opted_out = out.opted_out + 1
      else
        local open = true
        if whatsapp and store then open = store:window_open(sender, to) end
        local res, rerr = set:render(a.template, vars, { locale = col.locale and row[col.locale] or nil,
          channel = whatsapp and "whatsapp" or "sms", window_open = open })
        if not res then
          out.problems[#out.problems + 1] = { line, rerr }
        else
          local params = { to = to, status_callback = a["status-callback"] }
          if a.from then params.from = a.from else params.messaging_service_sid = a["messaging-service"] end
          local segs = 1
          if res.content_sid then
            params.content_sid, params.content_variables = res.content_sid, res.content_variables
          else
            params.body = res.body
            segs = res.segments
            out.encodings[res.encoding] = (out.encodings[res.encoding] or 0) + 1
            for _, w in ipairs(res.warnings) do out.warnings[w.message] = (out.warnings[w.message] or 0) + 1 end
          end
          out.segments = out.segments + segs
          if out.seen[to] then
            out.problems[#out.problems + 1] = { line, format("%s is also on line %d: sent once", to, out.seen[to]) }
          else
            out.seen[to] = line
            out.messages[#out.messages + 1] = { params, { dedupe = "campaign:" .. a.name .. ":" .. to,
              campaign = a.name, rate = tonumber(a.rate), segments = segs, policy = a.policy }, line }
          end
        end
      end
    end
  end
  return out
end

local function bar(frac, width)
  local full = floor(frac * width + 0.5)
  return ("#"):rep(full) .. ("-"):rep(width - full)
end

local function hms(s)
  if not s or s ~= s or s == math.huge then return "--:--" end
  s = floor(s + 0.5)
  if s >= 3600 then return format("%d:%02d:%02d", floor(s / 3600), floor(s / 60) % 60, s % 60) end
  return format("%02d:%02d", floor(s / 60), s % 60)
end

--- Runs the command.
-- @tparam table argv the arguments after `campaign`
-- @tparam[opt] table env `tty` (stdout is a terminal), `out` (a file, default
--   io.stdout), `sleep` (function)
-- @treturn number the exit status: 0 done, 1 a problem, 2 bad arguments
function _M.main(argv, env)
  env = env or {}
  local out = env.out or io.stdout
  local sleep = env.sleep or core.sleep
  local function say(...) out:write(format(...)) out:flush() end
  local errout = env.err or io.stderr
  local function usage_error(...) errout:write(format(...)) errout:flush() return 2 end
  local a, aerr = parse_args(argv)
  if not a then return usage_error("telua campaign: %s\n", aerr) end
  if a.help then out:write(usage(), "\n") out:flush() return 0 end
  if not a.csv or not a.template then return usage_error("telua campaign: --csv and --template are required (telua campaign --help)\n") end
  if (a.from == nil) == (a["messaging-service"] == nil) then
    return usage_error("telua campaign: give one of --from NUMBER or --messaging-service SID\n")
  end
  if a.rate and not (tonumber(a.rate) and tonumber(a.rate) > 0) then
    return usage_error("telua campaign: --rate must be messages per second > 0\n")
  end
  local window = a["quiet-hours"]
  if window ~= nil then
    if window == "off" then
      window = false
    else
      local f, t = window:match("^(%d%d?:%d%d)%-(%d%d?:%d%d)$")
      local w, werr = quiet.window(f and { from = f, to = t } or {})
      if not w then return usage_error("telua campaign: --quiet-hours: %s\n", f and werr or "want FROM-TO, e.g. 21:00-08:00, or off") end
      window = w
    end
  end
  local max_per_day = a["max-per-day"] and tonumber(a["max-per-day"])
  if a["max-per-day"] and not (max_per_day and max_per_day >= 1 and max_per_day % 1 == 0) then
    return usage_error("telua campaign: --max-per-day must be a whole number >= 1\n")
  end
  local rates, rerr = sender_mod.parse_rates(a["send-rates"])
  if not rates then return usage_error("telua campaign: --send-rates: %s\n", rerr) end
  if a.region and not e164.region_known(a.region) then return usage_error("telua campaign: unknown --region %s\n", a.region) end
  if a.from then
    local f = a.from:gsub("^whatsapp:", "")
    if not f:find("^%d%d%d%d%d%d?$") and not (f:find("^[%w ]+$") and f:find("%a") and #f <= 11) then
      local n = e164.normalize(f, a.region)
      if not n then return usage_error("telua campaign: --from %s is not a valid number\n", a.from) end
      a.from = (a.from:find("^whatsapp:") and "whatsapp:" or "") .. n
    end
  end
  a.name = a.name or (a.csv:match("([^/]+)$"):gsub("%.csv$", "") .. ":" .. a.template)
  a["status-callback"] = a["status-callback"] or os.getenv("TELUA_STATUS_CALLBACK")
  if a["status-callback"] and not a["status-callback"]:find("^https?://") then
    return usage_error("telua campaign: --status-callback must be an http(s) URL\n")
  end
  local wait_delivery = a["status-callback"] and tonumber(a["wait-delivery"] or 30) or 0
  local price = tonumber(a.price or _M.PRICE_PER_SEGMENT)
  local f = io.open(a.csv, "rb")
  if not f then say("telua campaign: cannot read %s\n", a.csv) return 1 end
  local text = f:read("*a")
  f:close()
  local rows, lines = _M.parse_csv(text)
  if not rows then say("telua campaign: %s: %s\n", a.csv, lines) return 1 end
  if #rows < 1 then say("telua campaign: %s is empty\n", a.csv) return 1 end
  local set, terr = templates_mod.load(a.templates or "rules/templates")
  if not set then say("telua campaign: %s\n", terr) return 1 end
  if window == nil then -- the template's, else the TCPA's
    local own = set:quiet_hours(a.template)
    window = quiet.window(own == nil and true or own)
  end
  a.policy = (window or max_per_day) and { quiet = window or nil, max_per_day = max_per_day } or nil
  local store, serr = store_mod.open(a.store or "sqlite:var/telua.db")
  if not store then say("telua campaign: %s\n", serr) return 1 end
  local p, perr = plan(a, set, store, rows, lines)
  if not p then say("telua campaign: %s\n", perr) return 1 end

  -- the report of the checks
  say("campaign %s: %d rows, %d to send (%d segments), %d opted out, %d invalid, %d other problems\n",
      a.name, p.rows, #p.messages, p.segments, p.opted_out, p.invalid, #p.problems - p.invalid)
  for enc, n in pairs(p.encodings) do say("  %s: %d messages\n", enc, n) end
  for msg, n in pairs(p.warnings) do say("  warning (%d messages): %s\n", n, msg) end
  for i, pr in ipairs(p.problems) do
    if i > 20 then say("  ... %d more problems\n", #p.problems - 20) break end
    say("  line %d: %s\n", pr[1], pr[2])
  end
  local rate = tonumber(a.rate)
  local t0 = (env.now or core.time)()
  -- each row's due time (its place in the campaign's schedule) and, from
  -- the sender's own pacing, when it would go
  local ahead, planned = 0, {}
  for i, m in ipairs(p.messages) do
    if rate and rate > 0 then
      m[2].not_before = t0 + ahead / rate - _M.SCHEDULE_LEAD
      ahead = ahead + (m[2].segments or 1)
    end
    local params = m[1]
    planned[i] = { sender = params.from or params.messaging_service_sid, to = params.to, segments = m[2].segments,
                   not_before = m[2].not_before, campaign = a.name, rate = rate, policy = a.policy }
  end
  local times, sched = sender_mod.schedule(planned, { rates = rates, start = t0 })
  table.sort(times)
  local kind = sender_mod.sender_type(a.from or a["messaging-service"])
  local function per_s(v) return v > 0 and format("%g segment%s/s", v, v == 1 and "" or "s") or "unpaced" end
  local planned_span = #times > 0 and sched.finish - t0 or 0
  say("estimate: about %s (%.1f s) at the sender's pacing (%s: %s; account: %s%s)\n", hms(planned_span),
      planned_span,
      (kind:gsub("_", " ")), per_s(rates[kind] or 0), per_s(rates.account or 0),
      rate and format("; campaign: %g MPS", rate) or "")
  if a.policy and a.policy.quiet then
    if sched.held > 0 then
      say("quiet hours %s: %d messages wait for them to end, the last until %s\n", quiet.format(a.policy.quiet),
          sched.held, os.date("!%Y-%m-%d %H:%M UTC", floor(sched.held_until)))
    else
      say("quiet hours %s: no message waits\n", quiet.format(a.policy.quiet))
    end
  end
  if a["dry-run"] then
    say("dry run: would send %d messages, %d segments, estimated cost $%.2f; nothing queued\n",
        #p.messages, p.segments, p.segments * price)
    store:close()
    return 0
  end

  -- Queue, durably, in batches (one fsync each). Between two batches the
  -- write lock is left free for a moment, so the host's sender (already
  -- sending the first rows) and its workers are not held off for the whole
  -- enqueue. With a rate, each row is due shortly before its place in the
  -- schedule (the segments before it / rate): the sender takes rows as
  -- their time comes instead of sweeping the backlog, and two campaigns at
  -- once take turns by their own schedules.
  store:durable_commits(true)
  local added, batch = 0, {}
  for i, m in ipairs(p.messages) do
    batch[#batch + 1] = { m[1], m[2] }
    if #batch == 500 or i == #p.messages then
      local n, err = store.outbox:enqueue_many(batch)
      if not n then say("telua campaign: queueing failed: %s\n", err) return 1 end
      added = added + n
      batch = {}
      if i < #p.messages then sleep(0.002) end
    end
  end
  store:durable_commits(false)
  say("queued %d new messages (%d were queued by an earlier run)\n", added, #p.messages - added)
  if a["no-wait"] then store:close() return 0 end

  -- progress until nothing is left to send
  local total = #p.messages
  local tty = env.tty
  local last_print, samples, sent_done_at = -1, {}, nil
  local started = core.monotonic()
  while true do
    local pr = store.outbox:progress(a.name)
    local now = core.monotonic()
    local done = pr.sent + pr.failed + pr.skipped + pr.unknown
    samples[#samples + 1] = { now, pr.sent }
    while #samples > 2 and samples[1][1] < now - 5 do table.remove(samples, 1) end
    local r = 0
    if #samples >= 2 and samples[#samples][1] > samples[1][1] then
      r = (samples[#samples][2] - samples[1][2]) / (samples[#samples][1] - samples[1][1])
    end
    local left = pr.queued + pr.sending + pr.reconciling
    -- the rest of the plan: from the first send still to come to the last,
    -- or to the planned end when the sender is on time
    local eta = left > 0 and #times > 0 and
      max(times[#times] - times[max(1, #times - left + 1)], times[#times] - (env.now or core.time)()) or nil
    local line = format("sent %d/%d  delivered %d  failed %d  %.1f msg/s  ETA %s",
      pr.sent, total, pr.delivered, pr.failed + pr.undelivered + pr.msg_failed, r, hms(left == 0 and 0 or eta))
    if tty then
      say("\r[%s] %3d%% %s\027[K", bar(total > 0 and done / total or 1, 30), total > 0 and floor(100 * done / total) or 100, line)
    elseif now - last_print >= 2 then
      say("%s %s\n", hms(now - started), line)
      last_print = now
    end
    -- done when nothing is left to send and (with receipts) every sent
    -- message has a final status, or the wait for receipts is over
    local finals = pr.delivered + pr.undelivered + pr.msg_failed
    if left == 0 then
      sent_done_at = sent_done_at or now
      if finals >= pr.sent or now - sent_done_at >= wait_delivery then break end
    end
    sleep(tty and 0.2 or 0.5)
  end
  local pr = store.outbox:progress(a.name)
  if tty then say("\n") else
    say("%s sent %d/%d  delivered %d  failed %d\n", hms(core.monotonic() - started), pr.sent, total, pr.delivered,
        pr.failed + pr.undelivered + pr.msg_failed)
  end
  local span = (pr.first_sent and pr.last_sent and pr.last_sent > pr.first_sent) and (pr.last_sent - pr.first_sent) or nil
  say("summary: %d sent, %d delivered, %d undelivered or failed after sending, %d failed to send, " ..
      "%d skipped (opted out at send time), %d unknown; %d segments, estimated cost $%.2f%s\n",
      pr.sent, pr.delivered, pr.undelivered + pr.msg_failed, pr.failed, pr.skipped, pr.unknown,
      pr.segments, pr.segments * price,
      span and pr.sent > 1 and format("; %.2f msg/s", (pr.sent - 1) / span) or "")
  store:close()
  return (pr.failed > 0 or pr.unknown > 0) and 1 or 0
end

return _M
