package redisstream

import "github.com/redis/go-redis/v9"

// Server-side scripts. Each touches one key, so it runs on one node of a
// cluster, and runs atomically: no XADD, XGROUP or XACK can come between
// the consumer-group check and the trim it guards. Each does a bounded
// amount of work (see the callers), so none blocks Redis for long.

// luaIDs holds the helpers every trimming script shares. Stream IDs are
// compared as decimal strings: Lua numbers are doubles, and a 64-bit
// sequence number would lose precision.
const luaIDs = `
local function numlt(a, b)
  if #a ~= #b then return #a < #b end
  return a < b
end
local function split(id)
  return string.match(id, '^(%d+)-(%d+)$')
end
local function idlt(a, b)
  local am, as = split(a)
  local bm, bs = split(b)
  if am ~= bm then return numlt(am, bm) end
  return numlt(as, bs)
end
local function incr(n)
  local out, carry = '', 1
  for i = #n, 1, -1 do
    local d = string.byte(n, i) - 48 + carry
    if d == 10 then d, carry = 0, 1 else carry = 0 end
    out = string.char(48 + d) .. out
  end
  if carry == 1 then out = '1' .. out end
  return out
end
local function idnext(id)
  local ms, seq = split(id)
  if seq == '18446744073709551615' then return incr(ms) .. '-0' end
  return ms .. '-' .. incr(seq)
end
-- floor returns the smallest ID some consumer group still needs: for each
-- group the lower of its oldest pending ID and the ID right after its
-- last-delivered-id. false when the stream has no groups.
local function floor(key)
  local f = false
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', key)) do
    local name, last, pending
    for i = 1, #g, 2 do
      if g[i] == 'name' then name = g[i + 1]
      elseif g[i] == 'last-delivered-id' then last = g[i + 1]
      elseif g[i] == 'pending' then pending = g[i + 1] end
    end
    local need = idnext(last)
    if pending > 0 then
      -- The extended form with COUNT 1 reads the oldest PEL entry; the
      -- summary form walks every consumer of the group.
      local p = redis.call('XPENDING', key, name, '-', '+', 1)
      if p[1] and idlt(p[1][1], need) then need = p[1][1] end
    end
    if not f or idlt(need, f) then f = need end
  end
  return f
end
`

// trimScript trims KEYS[1] once with XTRIM MINID.
//
//	ARGV[1] "minid"; ARGV[2] the threshold;
//	ARGV[3] "1" approximate (~ with LIMIT ARGV[4]) or "0" exact;
//	ARGV[5] the step's byte budget, or 0 when the caller knows the
//	bytes below the threshold (a cut of the plan, see cutter);
//	ARGV[6] (optional) max_records to leave, with ARGV[7] at most how
//	many entries are below the threshold.
//
// MINID is lowered to the consumer-group floor. With a budget, an
// approximate step of more than one entry first reads the oldest entry
// it may remove (one entry's cost, several times that inside a script
// for a large one; Apply needs a budget only past what the plan read):
// an entry larger than the budget lives alone in its node, and the step
// then frees that node only. The reply is {removed, threshold used,
// floor or "", size of the oldest entry still to trim when nothing was
// removed, else 0, 1 when the step was refused because it could leave
// fewer than ARGV[6] entries, else 0}, or {0, "", "missing", 0} when the
// stream is gone. That check and the trim are one atomic step: entries
// others removed since the caller counted (XDEL, Papyra's own XTRIM)
// show in XLEN.
var trimScript = redis.NewScript(luaIDs + `
local key = KEYS[1]
if redis.call('EXISTS', key) == 0 then return {0, '', 'missing', 0} end
if ARGV[1] ~= 'minid' then return redis.error_reply('trim mode ' .. ARGV[1]) end
-- firstSize is the size of the oldest entry below the ID below, 0 when
-- there is none. It reads that entry only.
local function firstSize(below)
  local e = redis.call('XRANGE', key, '-', '(' .. below, 'COUNT', 1)[1]
  if not e then return 0 end
  local n = #e[1]
  for _, v in ipairs(e[2]) do n = n + #v end
  return n
end
local limit, budget = tonumber(ARGV[4]), tonumber(ARGV[5])
local f = floor(key)
local b = ARGV[2]
if f and idlt(f, b) then b = f end
local keep, below = tonumber(ARGV[6] or '0'), tonumber(ARGV[7] or '0')
if keep > 0 and redis.call('XLEN', key) - below < keep then
  return {0, b, f or '', 0, 1}
end
if ARGV[3] == '1' and limit > 1 and budget > 0 then
  local s = firstSize(b)
  if s > 0 then limit = math.max(1, math.min(limit, math.floor(budget / s))) end
end
local n
if ARGV[3] == '1' then
  n = redis.call('XTRIM', key, 'MINID', '~', b, 'LIMIT', limit)
else
  n = redis.call('XTRIM', key, 'MINID', '=', b)
end
return {n, b, f or '', n == 0 and firstSize(b) or 0, 0}
`)

// delScript deletes the IDs in ARGV from KEYS[1], except those at or above
// the consumer-group floor. The reply is {deleted, refused}.
var delScript = redis.NewScript(luaIDs + `
local key = KEYS[1]
if redis.call('EXISTS', key) == 0 then return {0, 0} end
local f = floor(key)
local ids, refused, n = {}, 0, 0
for _, id in ipairs(ARGV) do
  if not f or idlt(id, f) then ids[#ids + 1] = id else refused = refused + 1 end
  -- unpack() is limited by the Lua stack: delete in slices.
  if #ids == 500 then
    n = n + redis.call('XDEL', key, unpack(ids))
    ids = {}
  end
end
if #ids > 0 then n = n + redis.call('XDEL', key, unpack(ids)) end
return {n, refused}
`)

// deleteEmptyScript deletes KEYS[1] if it is a stream with no entries and
// no consumer groups (deleting it would destroy the groups). 1 if deleted.
var deleteEmptyScript = redis.NewScript(`
local key = KEYS[1]
if redis.call('EXISTS', key) == 0 then return 0 end
if redis.call('XLEN', key) ~= 0 then return 0 end
if #redis.call('XINFO', 'GROUPS', key) ~= 0 then return 0 end
return redis.call('DEL', key)
`)

// renewScript extends the lease KEYS[1] to ARGV[2] ms if it still holds
// the token ARGV[1]. 1 if renewed.
var renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`)

// releaseScript deletes the lease KEYS[1] if it still holds the token
// ARGV[1]: a lease that expired and was taken by another agent is left
// alone. 1 if released.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)
