-- The types of keys (read before apply's first write, see apply.lua): what a key must hold
-- for a command, whether a field holds a value, and which commands are index entries'.

-- Whether the field of `kind` at key/sub holds `value` (a set or sorted set as a member,
-- a single value as its value).
local function holds(kind, key, sub, value)
    if kind == 'set' then return redis.call('SISMEMBER', key, value) == 1 end
    if kind == 'zset' then return redis.call('ZSCORE', key, value) ~= false end
    return read_state(kind, key, sub)[1] == value
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
