-- Apply one write atomically. Redis does not roll back a script that fails after a write, so
-- the script runs in three phases and writes only in the last one:
--   1. read every instruction (a malformed one fails here, before anything is written);
--   2. run the checks, and probe every value Redis could refuse in a later write: ZADD
--      scores (a ZADD XX on a key that never exists parses them and writes nothing), expiry
--      seconds (finite), the pk counter (an integer INCR can add one to);
--   3. run the writes.
-- The only write left that Redis may refuse for its values is a non-indexed modifier (the
-- reply of `Write.modify`): it is the write's first command (after, for a creation, the DEL
-- of its keys), so a refused one leaves no data behind, and the new pk is only taken from
-- the counter once every command ran.
--
-- A command is `n cmd args(n-1) h holes(h)`: each hole `i k pieces(k)` makes argument i
-- the k pieces joined by a pk the script provides (the new pk given by 'N', or each pk an
-- 'F' atom finds). Placeholders are positions: no argument text is ever searched.
--
-- ARGV: a sequence of instructions:
--   'X' collection pk expiry          the instance must exist       -> {'DOESNOTEXIST'}
--   'A' collection pk expiry          the pk must be free           -> {'PKEXISTS'}
--        an instance whose time in the zset `expiry` has passed is neither:
--        -> {'EXPIRED'} (it must be reaped first)
--   'D' collection pk expiry          reaping: the instance must still be expired
--                                     -> {'LIVE'}; no such instance -> {'GONE'}, after
--                                     dropping its expiry time (the reap's only write)
--   'G' kind key sub n expected(n)    the state is still as read    -> {'CONFLICT'}
--   'K' id collection pk expiry       a referenced instance exists  -> {'DANGLING', id}
--   'U' id how key a b pk expiry      no other instance holds a value -> {'UNIQUE', id, holder pk}
--        (a holder whose expiry time has passed -> {'REAP', holder pk}: reap it first)
--        how: 'set' (SMEMBERS key), 'lex' (ZRANGEBYLEX key a b), 'score' (ZRANGEBYSCORE key a b)
--   'N' counter                       the instance gets a new pk: the counter's value + 1,
--                                     stored in the counter after every other write
--   'F' atom nops command(nops)       for each pk the atom finds ('S' key | 'L' key min max |
--                                     'Z' key min max, as in query.lua), the commands with
--                                     their holes filled by that pk
--   'E' seconds command               the command `ZADD key pk` with (now + seconds) as
--                                     score: the instance expires then
--   'C' command                       a write
--   'R' command                       a write whose reply is returned
-- A value a probe refuses -> {'INVALID', Redis's error}.
-- Returns {'OK', reply, pk given by 'N' or false}.
local PROBE = '__limpyd_probe__'  -- never written: probes are ZADD XX on it
local ZADD_FLAGS = {NX = true, XX = true, GT = true, LT = true, CH = true, INCR = true}
local MAX_COUNTER = '9223372036854775807'
local r = argv_reader(ARGV)

local function read_command()
    local args = r.list(r.num())
    local holes = {}
    for i = 1, r.num() do
        local index, k = r.num(), r.num()
        holes[i] = {index + 1, r.list(k)}
    end
    return {args = args, holes = holes}
end

local function filled(command, pk)
    if #command.holes == 0 then return command.args end
    local args = {}
    for i, x in ipairs(command.args) do args[i] = x end
    for _, hole in ipairs(command.holes) do args[hole[1]] = table.concat(hole[2], pk) end
    return args
end

-- Redis's error for the scores of this ZADD, or nil when it accepts them.
local function zadd_error(args)
    local i = 3
    while args[i] and ZADD_FLAGS[string.upper(args[i])] do i = i + 1 end
    local probe = {'ZADD', PROBE, 'XX'}
    for j = i, #args do probe[#probe + 1] = args[j] end
    local res = redis.pcall(unpack(probe))
    if type(res) == 'table' and res.err then return error_text(res) end
    return nil
end

-- The decimal text of n + 1 (n the text of a non-negative integer).
local function successor(n)
    local i = #n
    while i > 0 and string.sub(n, i, i) == '9' do i = i - 1 end
    if i == 0 then return '1' .. string.rep('0', #n) end
    return string.sub(n, 1, i - 1) .. string.char(string.byte(n, i) + 1) .. string.rep('0', #n - i)
end

local function pks_of_atom(kind, key, a, b)
    if kind == 'S' then return redis.call('SMEMBERS', key) end
    local members = redis.call(kind == 'L' and 'ZRANGEBYLEX' or 'ZRANGEBYSCORE', key, a, b)
    local pks = {}
    for i, m in ipairs(members) do pks[i] = pk_of(m) end
    return pks
end

-- Phase 1: read.
local checks, writes, counter = {}, {}, nil
while not r.done() do
    local op = r.next()
    if op == 'X' or op == 'A' or op == 'D' then
        checks[#checks + 1] = {op, r.next(), r.next(), r.next()}
    elseif op == 'K' then
        checks[#checks + 1] = {op, r.next(), r.next(), r.next(), r.next()}
    elseif op == 'G' then
        local kind, key, sub = r.next(), r.next(), r.next()
        checks[#checks + 1] = {op, kind, key, sub, r.list(r.num())}
    elseif op == 'U' then
        checks[#checks + 1] = {op, r.next(), r.next(), r.next(), r.next(), r.next(), r.next(), r.next()}
    elseif op == 'N' then
        counter = r.next()
    elseif op == 'F' then
        local kind, key = r.next(), r.next()
        local a, b
        if kind ~= 'S' then a, b = r.next(), r.next() end
        local commands = {}
        for i = 1, r.num() do commands[i] = read_command() end
        writes[#writes + 1] = {op, commands, kind, key, a, b}
    elseif op == 'E' then
        local seconds = r.next()
        writes[#writes + 1] = {op, read_command(), seconds}
    elseif op == 'C' or op == 'R' then
        writes[#writes + 1] = {op, read_command()}
    else
        return redis.error_reply('limpyd: unknown instruction ' .. tostring(op))
    end
end

-- Phase 2: checks and probes.
for _, c in ipairs(checks) do
    local op = c[1]
    if op == 'X' or op == 'A' or op == 'D' then
        local collection, pk, expiry = c[2], c[3], c[4]
        local present = redis.call('SISMEMBER', collection, pk) == 1
        if op == 'D' then
            if not present then
                redis.call('ZREM', expiry, pk)
                return {'GONE'}
            end
            if not expired(expiry, pk) then return {'LIVE'} end
        else
            if present and expired(expiry, pk) then return {'EXPIRED'} end
            if op == 'X' and not present then return {'DOESNOTEXIST'} end
            if op == 'A' and present then return {'PKEXISTS'} end
        end
    elseif op == 'K' then
        local id, collection, pk, expiry = c[2], c[3], c[4], c[5]
        if redis.call('SISMEMBER', collection, pk) == 0 or expired(expiry, pk) then
            return {'DANGLING', id}
        end
    elseif op == 'G' then
        if not same_list(read_state(c[2], c[3], c[4]), c[5]) then return {'CONFLICT'} end
    else  -- 'U'
        local id, how, key, a, b, allowed, expiry = c[2], c[3], c[4], c[5], c[6], c[7], c[8]
        local holders
        if how == 'set' then
            holders = redis.call('SMEMBERS', key)
        elseif how == 'lex' then
            holders = redis.call('ZRANGEBYLEX', key, a, b)
        else
            holders = redis.call('ZRANGEBYSCORE', key, a, b)
        end
        for _, holder in ipairs(holders) do
            if how ~= 'set' then holder = pk_of(holder) end
            if holder ~= allowed then
                if expired(expiry, holder) then return {'REAP', holder} end
                return {'UNIQUE', id, holder}
            end
        end
    end
end
local new_pk = false
if counter then
    local n = redis.call('GET', counter) or '0'
    if not (string.match(n, '^0$') or string.match(n, '^[1-9]%d*$'))
        or #n > #MAX_COUNTER or (#n == #MAX_COUNTER and n >= MAX_COUNTER) then
        return {'INVALID', 'the pk counter ' .. counter .. ' holds ' .. n}
    end
    new_pk = successor(n)
end
for _, w in ipairs(writes) do
    if w[1] ~= 'F' and #w[2].holes > 0 and not new_pk then
        return redis.error_reply('limpyd: a placeholder without a new pk to put in it')
    end
    if w[1] == 'E' then
        local seconds = tonumber(w[3])
        if seconds == nil or seconds ~= seconds or seconds == math.huge or seconds == -math.huge then
            return {'INVALID', 'expiry in ' .. tostring(w[3]) .. ' seconds'}
        end
    elseif w[1] == 'C' or w[1] == 'R' then
        local args = w[2].args
        if string.upper(args[1]) == 'ZADD' then
            local err = zadd_error(args)
            if err then return {'INVALID', err} end
        end
    end
end

-- Phase 3: writes.
local reply = false
for _, w in ipairs(writes) do
    local op = w[1]
    if op == 'C' or op == 'R' then
        local res = redis.call(unpack(filled(w[2], new_pk)))
        if op == 'R' then
            if type(res) == 'table' and res.ok then res = res.ok end
            reply = res
        end
    elseif op == 'E' then
        local args = filled(w[2], new_pk)
        redis.call(args[1], args[2], now() + tonumber(w[3]), args[3])
    else  -- 'F'
        for _, pk in ipairs(pks_of_atom(w[3], w[4], w[5], w[6])) do
            for _, command in ipairs(w[2]) do redis.call(unpack(filled(command, pk))) end
        end
    end
end
if counter then redis.call('INCR', counter) end
return {'OK', reply, new_pk}
