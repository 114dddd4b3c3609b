-- Apply one write atomically: checks first, then writes; a failed check writes nothing.
-- ARGV: a sequence of instructions:
--   'X' collection pk expiry          the instance must exist       -> {'DOESNOTEXIST'}
--   'A' collection pk expiry          the pk must be free           -> {'PKEXISTS'}
--        an instance whose time in the zset `expiry` ('' for none) has passed is neither:
--        -> {'EXPIRED'} (it must be reaped first)
--   'G' kind key sub n expected(n)    the state is still as read    -> {'CONFLICT'}
--   'K' id collection pk expiry       a referenced instance exists  -> {'DANGLING', id}
--   'U' id how key a b pk expiry      no other instance holds a value -> {'UNIQUE', id, holder pk}
--        (a holder whose expiry time has passed -> {'REAP', holder pk}: reap it first)
--        how: 'set' (SMEMBERS key), 'lex' (ZRANGEBYLEX key a b), 'score' (ZRANGEBYSCORE key a b)
--   'N' token counter                 the instance gets a new pk (INCR counter), which
--                                     replaces `token` in the arguments of later writes
--   'F' token atom nops ops...        for each pk the atom finds ('S' key | 'L' key min max |
--                                     'Z' key min max, as in query.lua), the ops (each
--                                     n cmd args(n-1)) with `token` replaced by that pk
--   'E' key pk seconds                ZADD key (now + seconds) pk: the instance expires then
--   'C' n cmd args(n-1)               a write
--   'R' n cmd args(n-1)               a write whose reply is returned
-- Returns {'OK', reply, pk given by 'N' or false}.
local r = argv_reader(ARGV)
local reply, token, new_pk = false, nil, false

local function replace_all(s, old, new)
    if not string.find(s, old, 1, true) then return s end
    local out, i = {}, 1
    while true do
        local a, b = string.find(s, old, i, true)
        if not a then break end
        out[#out + 1] = string.sub(s, i, a - 1)
        out[#out + 1] = new
        i = b + 1
    end
    out[#out + 1] = string.sub(s, i)
    return table.concat(out)
end

local function with_pk(s)
    if not token then return s end
    return replace_all(s, token, new_pk)
end

local function pks_of_atom(kind, key, a, b)
    if kind == 'S' then return redis.call('SMEMBERS', key) end
    local members = redis.call(kind == 'L' and 'ZRANGEBYLEX' or 'ZRANGEBYSCORE', key, a, b)
    local pks = {}
    for i, m in ipairs(members) do pks[i] = pk_of(m) end
    return pks
end
while not r.done() do
    local op = r.next()
    if op == 'X' or op == 'A' then
        local collection, pk, expiry = r.next(), r.next(), r.next()
        local present = redis.call('SISMEMBER', collection, pk) == 1
        if present and expired(expiry, pk) then return {'EXPIRED'} end
        if op == 'X' and not present then return {'DOESNOTEXIST'} end
        if op == 'A' and present then return {'PKEXISTS'} end
    elseif op == 'E' then
        local key, pk, seconds = r.next(), with_pk(r.next()), tonumber(r.next())
        redis.call('ZADD', key, now() + seconds, pk)
    elseif op == 'K' then
        local id, collection, pk, expiry = r.next(), r.next(), r.next(), r.next()
        if redis.call('SISMEMBER', collection, pk) == 0 or expired(expiry, pk) then
            return {'DANGLING', id}
        end
    elseif op == 'G' then
        local kind, key, sub, n = r.next(), r.next(), r.next(), r.num()
        if not same_list(read_state(kind, key, sub), r.list(n)) then return {'CONFLICT'} end
    elseif op == 'U' then
        local id, how, key, a, b, allowed = r.next(), r.next(), r.next(), r.next(), r.next(), r.next()
        local expiry = r.next()
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
    elseif op == 'F' then
        local ftoken, kind, key = r.next(), r.next(), r.next()
        local a, b
        if kind ~= 'S' then a, b = r.next(), r.next() end
        local ops = {}
        for i = 1, r.num() do
            local n = r.num()
            ops[i] = r.list(n)
        end
        for _, pk in ipairs(pks_of_atom(kind, key, a, b)) do
            for _, fop in ipairs(ops) do
                local args = {}
                for j, x in ipairs(fop) do args[j] = replace_all(x, ftoken, pk) end
                redis.call(unpack(args))
            end
        end
    elseif op == 'N' then
        token = r.next()
        new_pk = tostring(redis.call('INCR', r.next()))
    elseif op == 'C' or op == 'R' then
        local n = r.num()
        local cmd = r.next()
        local args = r.list(n - 1)
        if token then for i = 1, #args do args[i] = with_pk(args[i]) end end
        local res = redis.call(cmd, unpack(args))
        if op == 'R' then
            if type(res) == 'table' and res.ok then res = res.ok end
            reply = res
        end
    else
        return redis.error_reply('limpyd: unknown instruction ' .. tostring(op))
    end
end
return {'OK', reply, new_pk}
