-- Apply one write atomically. Redis does not roll back a script that fails after a write, so
-- the script runs in three phases and writes only in the last one:
--   1. read every instruction (a malformed one fails here, before anything is written);
--   2. run the checks, and probe every value Redis could refuse in a later write: ZADD
--      scores (a ZADD XX on a key that never exists parses them and writes nothing), expiry
--      seconds (finite), the pk counter (an integer INCR can add one to), the type of every
--      key the writes name (see wrong_type);
--   3. run the writes. The one check left for this phase: the index entries of a value
--      Redis computes ('new' value entries) are known once their field's modifier ran;
--      refused, the modifier is undone (see pair_new_entries) and nothing else was written.
-- The only write left that Redis may refuse for its values is a non-indexed modifier (the
-- reply of `Write.modify`): it is the write's first command (after, for a creation, the DEL
-- of its keys), so a refused one leaves no data behind, and the new pk is only taken from
-- the counter once every command ran.
--
-- A command is `n cmd args(n-1) h holes(h) k keys(k)`: each hole `i k pieces(k)` makes
-- argument i the k pieces joined by the new pk given by new_pk. Placeholders are positions: no
-- argument text is ever searched. Each of `keys` is the position of an argument that is a
-- declared key (sent as its position in KEYS). Every other key below is declared.
--
-- ARGV: a sequence of instructions (the operations of limpyd/protocol.py, as OP.<name>):
--   exists collection pk expiry       the instance must exist       -> {'DOESNOTEXIST'}
--   free collection pk expiry         the pk must be free           -> {'PKEXISTS'}
--        an instance whose time in the zset `expiry` has passed is neither:
--        -> {'EXPIRED'} (it must be reaped first)
--   reaping collection pk expiry       reaping: the instance must still be expired
--                                     -> {'LIVE'}; no such instance -> {'GONE'}, after
--                                     dropping its expiry time (the reap's only write)
--   guard kind key sub n expected(n)    the state is still as read    -> {'CONFLICT'}
--   reference id collection pk expiry held-kind [held-key held-sub]
--                                     a referenced instance exists  -> {'DANGLING', id},
--                                     unless the field (held-kind not '') holds it already
--   unique id how key a b pk expiry    no other instance holds a value -> {'UNIQUE', id, holder pk}
--        (a holder whose expiry time has passed -> {'REAP', holder pk}: reap it first)
--        how: 'set' (SMEMBERS key), 'lex' (ZRANGEBYLEX key a b), 'score' (ZRANGEBYSCORE key a b)
--   probe key                         where ZADD scores are probed (ZADD XX on a key under
--                                     the model's prefix that never exists: nothing written)
--   new_pk counter collection         the instance gets a new pk: the counter's value + 1,
--                                     stored in the counter after every other write (one
--                                     the collection holds already refuses the write)
--   unlink links pk                   unlink the instance `pk` (being deleted) from the
--                                     instances pointing to it, as the link records in the
--                                     hash `links` say (see below; read before the first
--                                     write), then DEL links
--   expire seconds command            the command `ZADD key pk` with (now + seconds) as
--                                     score: the instance expires then
--   per_member kind key present n, n times: member k commands(k)
--                                     for each member the set or zset (kind) `key` holds
--                                     (present '1') or does not hold ('0') when this runs,
--                                     its commands (the index entries of what the next
--                                     command adds or removes)
--   value_entries when kind key sub from to n templates(n)
--                                     the index entries of each value of a field (its
--                                     single value, members or items): each template
--                                     is a command `n cmd args(n-1) h holes(h) k keys(k)`,
--                                     a hole `i mode k pieces(k)` making argument i the
--                                     pieces joined by the value's text (mode 'escaped':
--                                     with `from` replaced by `to`); the value before the
--                                     write (when 'old': read before any write) or as it is
--                                     when this runs ('new')
--   call command                      a write
--   call_for_reply command            a write whose reply is returned
-- A value a probe refuses -> {'INVALID', Redis's error}.
-- Returns {'OK', reply, pk given by new_pk or false}.
local probe_key  -- given by probe (each call starts without)
local MAX_COUNTER = '9223372036854775807'
local r  -- the call's arguments (each call sets it)

-- A command (`templated`: a template of value_entries, whose holes also say 'raw' or
-- 'escaped'), its declared keys in place.
local function read_command(templated)
    local args = r.list(r.num())
    local holes = {}
    for i = 1, r.num() do
        local index = r.num()
        local escaped = templated and r.next() == 'escaped'
        holes[i] = {index + 1, r.list(r.num()), escaped}
    end
    for _ = 1, r.num() do
        local index = r.num() + 1
        args[index] = r.declared(args[index])
    end
    return {args = args, holes = holes}
end

-- The arguments of `command` with each hole filled with `text` (a template's 'escaped'
-- holes with `escaped`).
local function filled(command, text, escaped)
    if #command.holes == 0 then return command.args end
    local args = {}
    for i, x in ipairs(command.args) do args[i] = x end
    for _, hole in ipairs(command.holes) do
        args[hole[1]] = table.concat(hole[2], hole[3] and escaped or text)
    end
    return args
end

-- `s` with every occurrence of `from` replaced by `to` (plain text, no pattern).
local function replace_plain(s, from, to)
    local out, i = {}, 1
    while true do
        local j = string.find(s, from, i, true)
        if not j then break end
        out[#out + 1] = string.sub(s, i, j - 1)
        out[#out + 1] = to
        i = j + #from
    end
    out[#out + 1] = string.sub(s, i)
    return table.concat(out)
end

-- The values of the field of `kind` at key/sub: its members, items or single value.
local function values_of(kind, key, sub)
    local state = read_state(kind, key, sub)
    if kind ~= 'zset' then return state end
    local members = {}
    for i = 1, #state, 2 do members[#members + 1] = state[i] end
    return members
end

-- Run the templates of a value_entries write `w` for each of `values`.
local function value_entries(w, values)
    for _, value in ipairs(values) do
        local escaped = replace_plain(value, w.from, w.to)
        for _, template in ipairs(w.templates) do call_many(filled(template, value, escaped)) end
    end
end


-- Redis's error for the scores of this ZADD, or nil when it accepts them.
local function zadd_error(args)
    local i = 3
    while args[i] and ZADD_FLAGS[string.upper(args[i])] do i = i + 1 end
    if not probe_key then error('limpyd: a ZADD to check without a probe key') end
    local probe = {'ZADD', probe_key, 'XX'}
    for j = i, #args do probe[#probe + 1] = args[j] end
    local res = call_many(probe, true)
    if type(res) == 'table' and res.err then return error_text(res) end
    return nil
end


-- The refusal of the first command of value entries `w`, for `values`, by `check`.
local function entries_refusal(w, values, check)
    for _, value in ipairs(values) do
        local escaped = replace_plain(value, w.from, w.to)
        for _, template in ipairs(w.templates) do
            local args = filled(template, value, escaped)
            local refused = check(args)
            if not refused and w.when == 'new' and string.upper(args[1]) == 'ZADD' then
                refused = zadd_error(args)  -- 'old' entries only remove
            end
            if refused then return refused end
        end
    end
    return nil
end

-- Put the key of a 'new' value entries' field back as it was before its modifier ran, as
-- phase 2 read it: a string's value and expiry time; a hash whole (DUMP), so that the
-- expiry times of its fields and its encoding are as they were too.
local function restore(w)
    if w.kind == 'hashfield' and w.dump then
        redis.call('RESTORE', w.key, math.max(w.expire_at, 0), w.dump, 'REPLACE', 'ABSTTL')
    elseif w.kind == 'hashfield' or not w.before[1] then
        redis.call('DEL', w.key)
    elseif w.expire_at > 0 then
        redis.call('SET', w.key, w.before[1], 'PXAT', w.expire_at)
    else
        redis.call('SET', w.key, w.before[1])
    end
end

-- The decimal text of n + 1 (n the text of a non-negative integer).
local function successor(n)
    local i = #n
    while i > 0 and string.sub(n, i, i) == '9' do i = i - 1 end
    if i == 0 then return '1' .. string.rep('0', #n) end
    return string.sub(n, 1, i - 1) .. string.char(string.byte(n, i) + 1) .. string.rep('0', #n - i)
end


-- The writes checked before the first one. The entries of a value Redis computes ('new'
-- value entries) are only known once their field's modifier ran: see phase 3.
local function wrong_type(writes, new_pk)
    local check, held = type_checker()
    for _, w in ipairs(writes) do
        local err
        if w[1] == OP.call or w[1] == OP.call_for_reply or w[1] == OP.expire then
            err = check(filled(w[2], new_pk))
        elseif w[1] == OP.per_member then
            err = type_refusal(w[2], held(w[2]), w[5])
            for _, item in ipairs(w[4]) do
                if not err and holds(w[5], w[2], '', item[1]) == w[3] then  -- as phase 3
                    for _, command in ipairs(item[2]) do err = err or check(command.args) end
                end
            end
        elseif w[1] == OP.value_entries and w.when == 'old' then
            err = entries_refusal(w, w.values, check)
        elseif w[1] == OP.unlink then
            err = unlink_refusal(w, check, held)
        end
        if err then return err end
    end
    return nil
end

-- 'new' value entries are checked once their field's modifier ran, and the modifier undone
-- if they are refused: only that modifier (a call on the field's key) and the field's 'old'
-- entries may come before them. The 'old' entries are removed once the 'new' are checked.
local function pair_new_entries(w, writes)
    local single = w.kind == 'string' or w.kind == 'hashfield'
    local modifiers = 0
    for _, p in ipairs(writes) do
        if p[1] == OP.value_entries and p.when == 'old' and p.kind == w.kind and p.key == w.key
            and p.sub == w.sub and not w.old then
            w.old, p.deferred = p, true
        elseif (p[1] == OP.call or p[1] == OP.call_for_reply) and modifiers == 0
            and p[2].args[2] == w.key and (w.kind ~= 'hashfield' or p[2].args[3] == w.sub) then
            modifiers = 1
        else
            single = false
        end
    end
    if not single then
        error("limpyd: 'new' value entries follow only their single-valued field's modifier and its 'old' entries")
    end
    for _, template in ipairs(w.templates) do
        if not is_index_command(template.args) then
            error("limpyd: 'new' value entries whose template is not an index entry's command")
        end
    end
end

return function(keys, argv, skip)
    r, probe_key = argv_reader(keys, argv, skip), nil
    -- Phase 1: read.
    local checks, writes, counter, pks = {}, {}, nil, nil
    while not r.done() do
        local op = r.next()
        if op == OP.exists or op == OP.free or op == OP.reaping then
            checks[#checks + 1] = {op, r.key(), r.next(), r.key()}
        elseif op == OP.reference then
            local check = {op, r.next(), r.key(), r.next(), r.key(), r.next()}
            if check[6] ~= '' then check[7], check[8] = r.key(), r.next() end
            checks[#checks + 1] = check
        elseif op == OP.guard then
            local kind, key, sub = r.next(), r.key(), r.next()
            checks[#checks + 1] = {op, kind, key, sub, r.list(r.num())}
        elseif op == OP.unique then
            checks[#checks + 1] = {op, r.next(), r.next(), r.key(), r.next(), r.next(), r.next(), r.key()}
        elseif op == OP.new_pk then
            counter, pks = r.key(), r.key()
        elseif op == OP.probe then
            probe_key = r.key()
        elseif op == OP.unlink then
            writes[#writes + 1] = {op, r.key(), r.next()}
        elseif op == OP.expire then
            local seconds = r.next()
            writes[#writes + 1] = {op, read_command(), seconds}
        elseif op == OP.per_member then
            local kind, key, present, items = r.next(), r.key(), r.next() == '1', {}
            for i = 1, r.num() do
                local member, commands = r.next(), {}
                for j = 1, r.num() do commands[j] = read_command() end
                items[i] = {member, commands}
            end
            writes[#writes + 1] = {op, key, present, items, kind}
        elseif op == OP.value_entries then
            local w = {op, when = r.next(), kind = r.next(), key = r.key(), sub = r.next()}
            if w.when ~= 'old' and w.when ~= 'new' then
                error('limpyd: value entries of an unknown time ' .. tostring(w.when))
            end
            w.from, w.to, w.templates = r.next(), r.next(), {}
            if w.from == '' then error('limpyd: value entries escaping an empty text') end
            for i = 1, r.num() do w.templates[i] = read_command(true) end
            if w.when == 'new' then pair_new_entries(w, writes) end
            writes[#writes + 1] = w
        elseif op == OP.call or op == OP.call_for_reply then
            writes[#writes + 1] = {op, read_command()}
        else
            return redis.error_reply('limpyd: unknown instruction ' .. tostring(op))
        end
    end

    -- Phase 2: checks and probes.
    for _, c in ipairs(checks) do
        local op = c[1]
        if op == OP.exists or op == OP.free or op == OP.reaping then
            local collection, pk, expiry = c[2], c[3], c[4]
            local present = redis.call('SISMEMBER', collection, pk) == 1
            if op == OP.reaping then
                if not present then
                    redis.call('ZREM', expiry, pk)
                    return {'GONE'}
                end
                if not expired(expiry, pk) then return {'LIVE'} end
            else
                if present and expired(expiry, pk) then return {'EXPIRED'} end
                if op == OP.exists and not present then return {'DOESNOTEXIST'} end
                if op == OP.free and present then return {'PKEXISTS'} end
            end
        elseif op == OP.reference then
            local id, collection, pk, expiry = c[2], c[3], c[4], c[5]
            local gone = redis.call('SISMEMBER', collection, pk) == 0 or expired(expiry, pk)
            if gone and not (c[6] ~= '' and holds(c[6], c[7], c[8], pk)) then
                return {'DANGLING', id}
            end
        elseif op == OP.guard then
            if not same_list(read_state(c[2], c[3], c[4]), c[5]) then return {'CONFLICT'} end
        else  -- OP.unique
            local id, how, key, a, b, allowed, expiry = c[2], c[3], c[4], c[5], c[6], c[7], c[8]
            local refused = type_refusal(key, redis.call('TYPE', key).ok, how == 'set' and 'set' or 'zset')
            if refused then return {'INVALID', refused} end
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
        if redis.call('SISMEMBER', pks, new_pk) == 1 then  -- a counter set back by a client
            return {'INVALID', 'the pk counter ' .. counter .. ' holds ' .. n .. ', behind the instance ' .. new_pk}
        end
    end
    for _, w in ipairs(writes) do
        if (w[1] == OP.call or w[1] == OP.call_for_reply or w[1] == OP.expire) and #w[2].holes > 0 and not new_pk then
            return redis.error_reply('limpyd: a placeholder without a new pk to put in it')
        end
        if w[1] == OP.expire then
            local seconds = tonumber(w[3])
            if seconds == nil or seconds ~= seconds or seconds == math.huge or seconds == -math.huge then
                return {'INVALID', 'expiry in ' .. tostring(w[3]) .. ' seconds'}
            end
        elseif w[1] == OP.call or w[1] == OP.call_for_reply then
            local args = w[2].args
            if string.upper(args[1]) == 'ZADD' then
                local err = zadd_error(args)
                if err then return {'INVALID', err} end
            end
        end
    end

    for _, w in ipairs(writes) do
        if w[1] == OP.value_entries and w.when == 'old' then
            w.values = values_of(w.kind, w.key, w.sub)
        elseif w[1] == OP.value_entries then  -- what `restore` puts back
            w.expire_at = redis.call('PEXPIRETIME', w.key)
            if w.kind == 'hashfield' then
                w.dump = redis.call('DUMP', w.key)
            else
                w.before = w.old and w.old.values or read_state(w.kind, w.key, w.sub)
            end
        end
    end
    local refused = wrong_type(writes, new_pk)
    if refused then return {'INVALID', refused} end

    -- Phase 3: writes.
    local reply = false
    for _, w in ipairs(writes) do
        local op = w[1]
        if op == OP.call or op == OP.call_for_reply then
            local res = call_many(filled(w[2], new_pk))
            if op == OP.call_for_reply then
                if type(res) == 'table' and res.ok then res = res.ok end
                reply = res
            end
        elseif op == OP.per_member then
            for _, item in ipairs(w[4]) do
                if holds(w[5], w[2], '', item[1]) == w[3] then
                    for _, command in ipairs(item[2]) do call_many(command.args) end
                end
            end
        elseif op == OP.value_entries and w.when == 'new' then
            w.values = values_of(w.kind, w.key, w.sub)
            refused = entries_refusal(w, w.values, type_checker())
            if refused then
                restore(w)
                return {'INVALID', refused}
            end
            if w.old then value_entries(w.old, w.old.values) end
            value_entries(w, w.values)
        elseif op == OP.value_entries then
            if not w.deferred then value_entries(w, w.values) end
        elseif op == OP.expire then
            local args = filled(w[2], new_pk)
            redis.call(args[1], args[2], now() + tonumber(w[3]), args[3])
        else  -- OP.unlink
            for _, rec in ipairs(w.records) do unlink_record(rec, w[3]) end
            redis.call('DEL', w[2])
        end
    end
    if counter then redis.call('INCR', counter) end
    return {'OK', reply, new_pk}
end
