-- Link records: how apply's `unlink` finds and unlinks the instances pointing to a deleted
-- one (written by contrib.related's `link_record`), and checks it can before its first
-- write (`unlink_refusal`, see apply.lua). A record is a list of strings, each `<byte length>:<bytes>`: where the field of a
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
