#!/usr/bin/python3
"""Local-time answers for telua's time-zone specs from Python's zoneinfo
(PEP 615: its own reader of the system's TZif files and POSIX TZ rules),
an implementation independent of telua's src/core/tz.c.

Reads one JSON object on stdin and writes one on stdout:
  offsets:     [[zone, t], ...]          -> [utcoffset seconds or null, ...]
  transitions: [[zone, year], ...]       -> [[t, ...] every instant in that year
                                            (UTC) where the zone's offset changes]
  allowed:     [[zones, from, to, t], ...] (from/to: minutes after local
               midnight; quiet from `from` to `to`) -> [the first instant >= t
               at which the local time is outside the quiet window in every
               zone, found by scanning minute by minute, or null within 3 days]
"""
import json
import sys
from datetime import datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

req = json.load(sys.stdin)
out = {}
cache = {}


def zone(name):
    if name not in cache:
        try:
            cache[name] = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            cache[name] = None
    return cache[name]


def offset(name, t):
    z = zone(name)
    if z is None:
        return None
    return int(datetime.fromtimestamp(t, timezone.utc).astimezone(z).utcoffset().total_seconds())


out["offsets"] = [offset(z, t) for z, t in req.get("offsets", [])]

trans = []
for name, year in req.get("transitions", []):
    lo = int(datetime(year, 1, 1, tzinfo=timezone.utc).timestamp())
    hi = int(datetime(year + 1, 1, 1, tzinfo=timezone.utc).timestamp())
    found, t, prev = [], lo, offset(name, lo)
    while t < hi:  # hour by hour, then to the second
        n = min(t + 3600, hi)
        cur = offset(name, n)
        if cur != prev:
            a, b = t, n
            while b - a > 1:
                m = (a + b) // 2
                if offset(name, m) == prev:
                    a = m
                else:
                    b = m
            found.append(b)
        t, prev = n, cur
    trans.append(found)
out["transitions"] = trans


def quiet(zones, f, to, t):
    for name in zones:
        o = offset(name, t)
        if o is None:
            continue
        m = ((t + o) // 60) % 1440
        inside = (f <= m < to) if f < to else (m >= f or m < to)
        if inside:
            return True
    return False


allowed = []
for zones, f, to, t in req.get("allowed", []):
    if not quiet(zones, f, to, t):
        allowed.append(t)
        continue
    m = (t // 60 + 1) * 60
    ans = None
    while m < t + 3 * 86400:
        if not quiet(zones, f, to, m):
            ans = m
            break
        m += 60
    allowed.append(ans)
out["allowed"] = allowed
json.dump(out, sys.stdout)
