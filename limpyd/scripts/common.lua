-- Shared helpers, prepended to every limpyd script.
local unpack = unpack or table.unpack
local CHUNK = 1000  -- arguments per call; even, so that pairs are never split

-- Variadic commands, by name: where their items start (DEL: every key is one), and how the
-- replies of chunks combine. A *STORE command's later chunks take its destination as their
-- first source.
local VARIADIC = {
    SADD = {3, 'sum'}, SREM = {3, 'sum'}, HDEL = {3, 'sum'}, ZREM = {3, 'sum'}, DEL = {2, 'sum'},
    HSET = {3, 'sum'}, ZADD = {3, 'sum'}, HMSET = {3, 'last'},
    LPUSH = {3, 'last'}, RPUSH = {3, 'last'}, LPUSHX = {3, 'last'}, RPUSHX = {3, 'last'},
    SUNIONSTORE = {3, 'store'}, SINTERSTORE = {3, 'store'}, SDIFFSTORE = {3, 'store'},
}
local ZADD_FLAGS = {NX = true, XX = true, GT = true, LT = true, CH = true, INCR = true}

-- Run the command `args` ({name, ...}) as redis.call does (redis.pcall if `protected`), in
-- chunks when it has more arguments than Lua passes in one call: the effect and the reply
-- are those of the whole command, since variadic commands apply their items in order.
local function call_many(args, protected)
    local call = protected and redis.pcall or redis.call
    local name = string.upper(args[1])
    local spec = VARIADIC[name]
    if #args <= CHUNK or not spec then return call(unpack(args)) end
    local first, combine = spec[1], spec[2]
    if name == 'ZADD' then
        while args[first] and ZADD_FLAGS[string.upper(args[first])] do first = first + 1 end
    end
    local reply
    for i = first, #args, CHUNK do
        local part = {}
        for j = 1, first - 1 do part[j] = args[j] end
        if combine == 'store' and i > first then part[#part + 1] = args[2] end
        for j = i, math.min(i + CHUNK - 1, #args) do part[#part + 1] = args[j] end
        local res = call(unpack(part))
        if type(res) == 'table' and res.err then return res end
        if combine == 'sum' and reply then reply = reply + res else reply = res end
    end
    return reply
end

-- Run `cmd key <items...>`, whatever the number of items (none: nothing to run).
local function chunked(cmd, key, items)
    if #items == 0 then return nil end
    local args = {cmd, key}
    for _, item in ipairs(items) do args[#args + 1] = item end
    return call_many(args)
end

-- Sort pairs {k1, v1, k2, v2, ...} by key, so equal hashes read equal.
local function sorted_pairs(flat)
    local keys, values, out = {}, {}, {}
    for i = 1, #flat, 2 do keys[#keys + 1] = flat[i]; values[flat[i]] = flat[i + 1] end
    table.sort(keys)
    for _, k in ipairs(keys) do out[#out + 1] = k; out[#out + 1] = values[k] end
    return out
end

-- Refuse the call for what it was given or found (read by limpyd/refusals.py):
-- 'limpyd: refused <code>', then each text as 'x' and its bytes in hex (any byte survives
-- the error reply). Raised at level 0: no position of the code is added to it.
local function refuse(code, ...)
    local parts = {'limpyd: refused', code}
    for _, text in ipairs({...}) do
        parts[#parts + 1] = 'x' .. string.gsub(text, '.', function(c)
            return string.format('%02x', string.byte(c))
        end)
    end
    error(table.concat(parts, ' '), 0)
end

-- The state of a field as a flat list of strings, equal for equal contents:
-- string/hashfield: {} when missing, {value} otherwise; hash: sorted pairs;
-- set: sorted members; list: items; zset: member, score pairs in rank order.
local function read_state(kind, key, sub)
    local held = redis.call('TYPE', key)
    held = held.ok or held
    if held ~= 'none' and STATE_TYPES[kind] and held ~= STATE_TYPES[kind] then
        refuse('state_type', key, held, STATE_TYPES[kind])  -- written by another client
    end
    if kind == 'string' then
        local v = redis.call('GET', key)
        if v then return {v} end
        return {}
    elseif kind == 'hashfield' then
        local v = redis.call('HGET', key, sub)
        if v then return {v} end
        return {}
    elseif kind == 'hash' then
        return sorted_pairs(redis.call('HGETALL', key))
    elseif kind == 'set' then
        local m = redis.call('SMEMBERS', key)
        table.sort(m)
        return m
    elseif kind == 'list' then
        return redis.call('LRANGE', key, 0, -1)
    elseif kind == 'zset' then
        return redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
    end
    return redis.error_reply('limpyd: unknown state kind ' .. tostring(kind))
end

-- Write a state read by read_state into an empty key.
local function write_state(kind, key, sub, state)
    if #state == 0 then return end
    if kind == 'string' then
        redis.call('SET', key, state[1])
    elseif kind == 'hashfield' then
        redis.call('HSET', key, sub, state[1])
    elseif kind == 'hash' then
        chunked('HSET', key, state)
    elseif kind == 'set' then
        chunked('SADD', key, state)
    elseif kind == 'list' then
        chunked('RPUSH', key, state)
    elseif kind == 'zset' then
        local swapped = {}
        for i = 1, #state, 2 do swapped[#swapped + 1] = state[i + 1]; swapped[#swapped + 1] = state[i] end
        chunked('ZADD', key, swapped)
    end
end

local function same_list(a, b)
    if #a ~= #b then return false end
    for i = 1, #a do if a[i] ~= b[i] then return false end end
    return true
end

-- A cursor over one call's arguments `argv` after its first `skip` (see limpyd/lua.py):
-- next() gives the next string, num() the next number, key() the key the next argument
-- declares (its position in `keys`, see limpyd/protocol.py), declared(p) the key at position
-- p, list(n) n strings.
local function argv_reader(keys, argv, skip)
    local pos = skip
    local r = {}
    function r.declared(position)
        local key = keys[tonumber(position)]
        if not key then error('limpyd: no declared key at ' .. tostring(position)) end
        return key
    end
    function r.next() pos = pos + 1; return argv[pos] end
    function r.num() pos = pos + 1; return tonumber(argv[pos]) end
    function r.key() pos = pos + 1; return r.declared(argv[pos]) end
    function r.list(n)
        local out = {}
        for i = 1, n do out[i] = argv[pos + i] end
        pos = pos + n
        return out
    end
    function r.done() return pos >= #argv end
    return r
end

local function error_text(err)
    if type(err) == 'table' and err.err then return tostring(err.err) end
    return tostring(err)
end

-- The server's time, in seconds.
local function now()
    local t = redis.call('TIME')
    return tonumber(t[1]) + tonumber(t[2]) / 1000000
end

-- Whether the instance `pk` has an expiry time (in the zset `key`) that has passed.
local function expired(key, pk)
    if key == '' then return false end
    local at = redis.call('ZSCORE', key, pk)
    return at ~= false and at ~= nil and tonumber(at) <= now()
end

-- Members of a range index are <escaped value> NUL NUL <pk>.
local function pk_of(member)
    local i = 1
    while true do
        local z = string.find(member, '\0', i, true)
        if not z then return member end
        local nxt = string.sub(member, z + 1, z + 1)
        if nxt == '\0' then return string.sub(member, z + 2) end
        i = z + 2
    end
end
