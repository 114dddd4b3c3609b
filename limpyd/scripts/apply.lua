-- Apply one write atomically: checks first, then writes; a failed check writes nothing.
-- ARGV: a sequence of instructions:
--   'X' collection pk                 the instance must exist       -> {'DOESNOTEXIST'}
--   'A' collection pk                 the pk must be free           -> {'PKEXISTS'}
--   'G' kind key sub n expected(n)    the state is still as read    -> {'CONFLICT'}
--   'U' id how key a b pk             no other instance holds a value -> {'UNIQUE', id, holder pk}
--        how: 'set' (SMEMBERS key), 'lex' (ZRANGEBYLEX key a b), 'score' (ZRANGEBYSCORE key a b)
--   'C' n cmd args(n-1)               a write
--   'R' n cmd args(n-1)               a write whose reply is returned
-- Returns {'OK', reply}.
local r = argv_reader(ARGV)
local reply = false
while not r.done() do
    local op = r.next()
    if op == 'X' or op == 'A' then
        local present = redis.call('SISMEMBER', r.next(), r.next()) == 1
        if op == 'X' and not present then return {'DOESNOTEXIST'} end
        if op == 'A' and present then return {'PKEXISTS'} end
    elseif op == 'G' then
        local kind, key, sub, n = r.next(), r.next(), r.next(), r.num()
        if not same_list(read_state(kind, key, sub), r.list(n)) then return {'CONFLICT'} end
    elseif op == 'U' then
        local id, how, key, a, b, allowed = r.next(), r.next(), r.next(), r.next(), r.next(), r.next()
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
            if holder ~= allowed then return {'UNIQUE', id, holder} end
        end
    elseif op == 'C' or op == 'R' then
        local n = r.num()
        local cmd = r.next()
        local res = redis.call(cmd, unpack(r.list(n - 1)))
        if op == 'R' then
            if type(res) == 'table' and res.ok then res = res.ok end
            reply = res
        end
    else
        return redis.error_reply('limpyd: unknown instruction ' .. tostring(op))
    end
end
return {'OK', reply}
