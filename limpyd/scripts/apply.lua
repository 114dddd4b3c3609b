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
--   new_pk counter                    the instance gets a new pk: the counter's value + 1,
--                                     stored in the counter after every other write
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

-- Whether the field of `kind` at key/sub holds `value` (a set or sorted set as a member,
-- a single value as its value).
local function holds(kind, key, sub, value)
    if kind == 'set' then return redis.call('SISMEMBER', key, value) == 1 end
    if kind == 'zset' then return redis.call('ZSCORE', key, value) ~= false end
    return read_state(kind, key, sub)[1] == value
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

-- Redis refuses a command on a key of another type (WRONGTYPE) once the commands before it
-- ran: every key the writes name must hold what their commands need (KEY_TYPES) or nothing,
-- as the writes before it leave it. A checker: check(args) gives the refusal's text or nil,
-- and records what the command leaves; held(key) is the key's type as checked so far.
local function type_refusal(key, held, want)
    if held == 'none' or held == want then return nil end
    return 'key ' .. key .. ' holds a ' .. held .. ', not a ' .. want
end

-- Whether `args` is an index entry's command (INDEX_COMMANDS): its name, a key, members
-- (ZADD: score-member pairs).
local function is_index_command(args)
    local fewest = INDEX_COMMANDS[string.upper(args[1])]
    if not fewest or #args < fewest then return false end
    return string.upper(args[1]) ~= 'ZADD' or #args % 2 == 0
end

local function type_checker()
    local types = {}  -- key -> its type as the commands checked before leave it
    local function held(key) return types[key] or redis.call('TYPE', key).ok end
    local function check(args)
        local name = string.upper(args[1])
        if name == 'DEL' or name == 'UNLINK' then
            for i = 2, #args do types[args[i]] = 'none' end
        elseif name == 'SET' then
            types[args[2]] = 'string'
        elseif KEY_TYPES[name] and args[2] then  -- without a key, Redis refuses it alone
            local want, key = KEY_TYPES[name], args[2]
            local refused = type_refusal(key, held(key), want)
            if refused then return refused end
            types[key] = want
        end
        return nil
    end
    return check, held
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

-- Link records (op unlink, written by contrib.related's `link_record`) -------------------
-- A record is a list of strings, each `<byte length>:<bytes>`: where the field of a
-- referencing instance `r` is (kind, key before r, key after r, hash field), the atom finding
-- the instances holding the deleted pk (set_key key | lex_range key min max), the index entries to
-- remove (n, then each op: nargs, then each arg '=' text | '+' before-r after-r), then the
-- unique_together groups (n, then each: key prefix, nfields, then each field 'V' encoded
-- text | 'R' kind key-before key-after hash-field: r's value, encoded).

local MALFORMED_RECORD = 'limpyd: a malformed link record'

-- A reader of a record's strings (next, num), failing the call at its end or on a count
-- that is not digits (see the native `_RecordReader`).
local function decode_record(s)
    local out, i = {}, 1
    while i <= #s do
        local colon = string.find(s, ':', i, true)
        local length = colon and string.match(string.sub(s, i, colon - 1), '^%d+$')
        if not length or colon + tonumber(length) > #s then error(MALFORMED_RECORD) end
        out[#out + 1] = string.sub(s, colon + 1, colon + tonumber(length))
        i = colon + tonumber(length) + 1
    end
    local pos, d = 0, {}
    function d.next()
        pos = pos + 1
        if pos > #out then error(MALFORMED_RECORD) end
        return out[pos]
    end
    function d.num()
        local n = string.match(d.next(), '^%d+$')
        if not n then error(MALFORMED_RECORD) end
        return tonumber(n)
    end
    return d
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

-- A field state's kind, checked (as read_state knows it).
local function state_kind(kind)
    if not STATE_TYPES[kind] then error('limpyd: unknown state kind ' .. tostring(kind)) end
    return kind
end

-- The command unlink_value runs on a field of each kind.
local UNLINKS = {string = 'DEL', hashfield = 'HDEL', set = 'SREM', list = 'LREM', zset = 'ZREM'}

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
    if kind == OP.set_key then return redis.call('SMEMBERS', key) end
    local pks = {}
    for i, m in ipairs(redis.call('ZRANGEBYLEX', key, a, b)) do pks[i] = pk_of(m) end
    return pks
end

-- A link record, read (see above): kind before after sub (where r's value is), atom key a b
-- (what finds the holders), ops (the index entries), groups (unique_together).
local function read_record(record)
    local d = decode_record(record)
    local rec = {kind = d.next(), before = d.next(), after = d.next(), sub = d.next()}
    if not UNLINKS[rec.kind] then error('limpyd: a link record of kind ' .. tostring(rec.kind)) end
    rec.atom, rec.key = d.next(), d.next()
    if rec.atom ~= OP.set_key then rec.a, rec.b = d.next(), d.next() end
    rec.ops = {}
    for i = 1, d.num() do
        local op = {}
        for j = 1, d.num() do
            if d.next() == '=' then op[j] = d.next() else op[j] = {d.next(), d.next()} end
        end
        if type(op[1]) ~= 'string' or not is_index_command(op) then error(MALFORMED_RECORD) end
        rec.ops[i] = op
    end
    rec.groups = {}
    for i = 1, d.num() do
        local group = {prefix = d.next(), parts = {}}
        for j = 1, d.num() do
            if d.next() == 'V' then group.parts[j] = d.next()
            else group.parts[j] = {state_kind(d.next()), d.next(), d.next(), d.next()} end
        end
        rec.groups[i] = group
    end
    return rec
end

-- The commands removing the index entries of `holder` (r in the record's ops).
local function holder_ops(rec, holder)
    local commands = {}
    for i, op in ipairs(rec.ops) do
        local args = {}
        for j, x in ipairs(op) do
            if type(x) == 'table' then args[j] = x[1] .. holder .. x[2] else args[j] = x end
        end
        commands[i] = args
    end
    return commands
end

-- The key of a unique_together group's combination for `holder`, or nil when one of its
-- fields has no value (the fields after it are not read); and the refusal of `refused(kind,
-- key)` for a key read on the way, which stops there.
local function group_member(group, holder, refused)
    local parts = {}
    for j, part in ipairs(group.parts) do
        if type(part) == 'table' then
            local key = part[2] .. holder .. part[3]
            local err = refused and refused(part[1], key)
            if err then return nil, err end
            local v = read_state(part[1], key, part[4])[1]
            if not v then return nil end
            part = text_length(v) .. ':' .. v
        end
        parts[j] = part
    end
    return group.prefix .. table.concat(parts)
end

local function unlink_record(rec, pk)
    for _, holder in ipairs(pks_of_atom(rec.atom, rec.key, rec.a, rec.b)) do
        if unlink_value(rec.kind, rec.before .. holder .. rec.after, rec.sub, pk) then
            for _, args in ipairs(holder_ops(rec, holder)) do redis.call(unpack(args)) end
            for _, group in ipairs(rec.groups) do
                local member = group_member(group, holder)
                if member then redis.call('SREM', member, holder) end
            end
        end
    end
end

-- Whether the field of a record's holder at `key` holds `pk` (what unlink_value removes).
local function holds_pk(rec, key, pk)
    if rec.kind == 'list' then return redis.call('LPOS', key, pk) ~= false end
    return holds(rec.kind, key, rec.sub, pk)
end

-- The refusal of the commands unlinking `pk` from `holder`, or nil (`check`, `held`: a
-- type_checker).
local function holder_refusal(rec, holder, pk, check, held)
    local key = rec.before .. holder .. rec.after
    local refused = type_refusal(key, held(key), STATE_TYPES[rec.kind])
    if refused or held(key) == 'none' or not holds_pk(rec, key, pk) then return refused end
    for _, args in ipairs({{UNLINKS[rec.kind], key}, unpack(holder_ops(rec, holder))}) do
        refused = refused or check(args)
    end
    local function key_refused(kind, k) return type_refusal(k, held(k), STATE_TYPES[kind]) end
    for _, group in ipairs(rec.groups) do
        if refused then break end
        local member
        member, refused = group_member(group, holder, key_refused)
        if member then refused = check({'SREM', member}) end
    end
    return refused
end

-- The refusal of an unlink `w` for a key of another type, found by reading only (its
-- records, their holders and values), as its commands would meet them after the writes
-- checked before. Holders are found as the data is before the write (one whose key the
-- write's own commands empty first is skipped). Keeps the records read, for phase 3.
local function unlink_refusal(w, check, held)
    local refused = type_refusal(w[2], held(w[2]), 'hash')
    if refused then return refused end
    w.records = {}
    for i, record in ipairs(redis.call('HVALS', w[2])) do
        local rec = read_record(record)
        w.records[i] = rec
        local atom_type = rec.atom == OP.set_key and 'set' or 'zset'
        refused = type_refusal(rec.key, held(rec.key), atom_type)
        if refused then return refused end
        for _, holder in ipairs(pks_of_atom(rec.atom, rec.key, rec.a, rec.b)) do
            refused = holder_refusal(rec, holder, w[3], check, held)
            if refused then return refused end
        end
    end
    return nil
end
-- End of link records ---------------------------------------------------------------------

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
    local checks, writes, counter = {}, {}, nil
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
            counter = r.key()
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
