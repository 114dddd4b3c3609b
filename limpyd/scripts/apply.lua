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
--   'P' links pk                      unlink the instance `pk` (being deleted) from the
--                                     instances pointing to it, as the link records in the
--                                     hash `links` say (see below), then DEL links
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

-- Link records (op 'P', written by contrib.related's `link_record`) ---------------------
-- A record is a list of strings, each `<byte length>:<bytes>`: where the field of a
-- referencing instance `r` is (kind, key before r, key after r, hash field), the atom finding
-- the instances holding the deleted pk ('S' key | 'L' key min max), the index entries to
-- remove (n, then each op: nargs, then each arg '=' text | '+' before-r after-r), then the
-- unique_together groups (n, then each: key prefix, nfields, then each field 'V' encoded
-- text | 'R' kind key-before key-after hash-field: r's value, encoded).

local function decode_record(s)
    local out, i = {}, 1
    while i <= #s do
        local colon = string.find(s, ':', i, true)
        local n = tonumber(string.sub(s, i, colon - 1))
        out[#out + 1] = string.sub(s, colon + 1, colon + n)
        i = colon + n + 1
    end
    return argv_reader(out)
end

-- The length Python gives the text of these bytes: utf-8 where valid, one character per
-- other byte (surrogateescape), as in the keys of unique_together combinations.
local function text_length(s)
    local count, i, size = 0, 1, #s
    while i <= size do
        local b, step = string.byte(s, i), 1
        if b >= 0xC2 and b <= 0xF4 then
            local need = (b < 0xE0 and 1) or (b < 0xF0 and 2) or 3
            local lo, hi = 0x80, 0xBF
            if b == 0xE0 then lo = 0xA0 elseif b == 0xED then hi = 0x9F
            elseif b == 0xF0 then lo = 0x90 elseif b == 0xF4 then hi = 0x8F end
            local valid = i + need <= size
            for k = 1, need do
                if not valid then break end
                local c = string.byte(s, i + k)
                if k == 1 then valid = c >= lo and c <= hi else valid = c >= 0x80 and c <= 0xBF end
            end
            if valid then step = need + 1 end
        end
        count, i = count + 1, i + step
    end
    return count
end

-- Remove `pk` from the value of `kind` at key/sub; whether it held it.
local function unlink_value(kind, key, sub, pk)
    if kind == 'string' or kind == 'hashfield' then
        if read_state(kind, key, sub)[1] ~= pk then return false end
        if kind == 'string' then redis.call('DEL', key) else redis.call('HDEL', key, sub) end
        return true
    elseif kind == 'set' then
        return redis.call('SREM', key, pk) == 1
    elseif kind == 'list' then
        return redis.call('LREM', key, 0, pk) > 0
    end
    return redis.call('ZREM', key, pk) == 1
end

local function pks_of_atom(kind, key, a, b)
    if kind == 'S' then return redis.call('SMEMBERS', key) end
    local pks = {}
    for i, m in ipairs(redis.call('ZRANGEBYLEX', key, a, b)) do pks[i] = pk_of(m) end
    return pks
end

local function unlink_record(record, pk)
    local d = decode_record(record)
    local kind, before, after, sub = d.next(), d.next(), d.next(), d.next()
    local atom, key, a, b = d.next(), d.next(), nil, nil
    if atom ~= 'S' then a, b = d.next(), d.next() end
    local ops = {}
    for i = 1, d.num() do
        local op = {}
        for j = 1, d.num() do
            if d.next() == '=' then op[j] = d.next() else op[j] = {d.next(), d.next()} end
        end
        ops[i] = op
    end
    local groups = {}
    for i = 1, d.num() do
        local group = {prefix = d.next(), parts = {}}
        for j = 1, d.num() do
            if d.next() == 'V' then group.parts[j] = d.next()
            else group.parts[j] = {d.next(), d.next(), d.next(), d.next()} end
        end
        groups[i] = group
    end
    for _, holder in ipairs(pks_of_atom(atom, key, a, b)) do
        if unlink_value(kind, before .. holder .. after, sub, pk) then
            for _, op in ipairs(ops) do
                local args = {}
                for j, x in ipairs(op) do
                    if type(x) == 'table' then args[j] = x[1] .. holder .. x[2] else args[j] = x end
                end
                redis.call(unpack(args))
            end
            for _, group in ipairs(groups) do
                local parts = {}
                for j, part in ipairs(group.parts) do
                    if type(part) == 'table' then
                        local v = read_state(part[1], part[2] .. holder .. part[3], part[4])[1]
                        if not v then parts = nil; break end
                        part = text_length(v) .. ':' .. v
                    end
                    parts[j] = part
                end
                if parts then redis.call('SREM', group.prefix .. table.concat(parts), holder) end
            end
        end
    end
end
-- End of link records ---------------------------------------------------------------------

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
    elseif op == 'P' then
        local links, pk = r.next(), r.next()
        for _, record in ipairs(redis.call('HVALS', links)) do unlink_record(record, pk) end
        redis.call('DEL', links)
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
