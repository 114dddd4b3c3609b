-- Evaluate a collection in one call: filters, intersections, sort, slices, output.
-- ARGV (the operations of limpyd/protocol.py, as OP.<name>):
--   collection-key instance-prefix hash-suffix expiry-key
--   a set expression: collection | atoms natoms atoms (their union)
--       | intersection n sets | union n sets | difference n sets (first minus the others)
--       | symmetric_difference 2 sets; an atom is one of:
--       set_key key | lex_range key min max | score_range key min max | pk_list n pks(n)
--       | key_members key (any set/zset/list)
--       | stored_list key (a list of pks 'store' wrote, which must exist: an empty result
--         stores no key, and the collection then reads an empty pk_list instead)
--       | field_exists prefix suffix sub want: instances whose field key prefix..pk..suffix
--         (hash field `sub` when not '') exists ('1') or not ('0')
--   sort: unsorted | by_default desc (by pk: numeric if all pks are numbers, else alpha)
--         | by_auto_pk desc (by pk, numeric: every pk is an AutoPKField's, a canonical integer)
--         | by_pk alpha desc | by_string alpha desc suffix | by_hash alpha desc field
--         | by_score alpha desc key | by_list alpha desc key (in the order of a list)
--         | by_indexed kind alpha desc by index-key: as kind (by_string | by_hash) by, the
--           field's values kept by an untransformed TextRangeIndex at index-key
--         | by_keys n, n times: kind (by_pk | by_string | by_hash) suffix-or-field alpha desc,
--           ties by pk (byte-wise)
--   nslices, each: start stop step ('' for None)
--   output: 'pks' | 'count' | 'values' n specs(n) (the rows flat, n values each)
--       | 'store' key ttl ('' for none)
--       | 'any' k: up to k of the results, in no order (no slices)
--       spec: 'pk' | 'S' suffix (a StringField) | 'H:' field | 'score'
-- Every key above is declared (sent as its position in KEYS); instance keys are built from
-- the prefixes given. Nothing is written but the result of 'store': no temporary key, so a
-- query runs as a read-only script (on replicas too, and SCRIPT KILL can stop it). A set is a node: either
-- a Redis set key not read yet ({key = k}), or members read into Lua ({list, has}).
local r, collection  -- the call's arguments and collection key (each call sets them)

local function key_node(key) return {key = key} end

local function members_node(list)
    local has, out = {}, {}
    for _, m in ipairs(list) do
        if not has[m] then has[m] = true; out[#out + 1] = m end
    end
    return {list = out, has = has}
end

local function members(node)
    if node.list then return node.list end
    return redis.call('SMEMBERS', node.key)
end

local function size(node)
    if node.list then return #node.list end
    return redis.call('SCARD', node.key)
end

-- For each of `list`, whether `node` holds it.
local function holds(node, list)
    local out = {}
    if node.has then
        for i, m in ipairs(list) do out[i] = node.has[m] == true end
        return out
    end
    for i = 1, #list, CHUNK do
        local call = {'SMISMEMBER', node.key}
        for j = i, math.min(i + CHUNK - 1, #list) do call[#call + 1] = list[j] end
        for j, v in ipairs(redis.call(unpack(call))) do out[i + j - 1] = v == 1 end
    end
    return out
end

-- The members of `list` that `node` holds (or, with `keep` false, does not hold).
local function filter(list, node, keep)
    local out = {}
    for i, held in ipairs(holds(node, list)) do
        if held == keep then out[#out + 1] = list[i] end
    end
    return out
end

-- The keys of `nodes` when they are all unread keys few enough for one command, else nil.
local function plain_keys(nodes)
    if #nodes > CHUNK then return nil end
    local keys = {}
    for i, node in ipairs(nodes) do
        if not node.key then return nil end
        keys[i] = node.key
    end
    return keys
end

local function union(nodes)
    local keys = plain_keys(nodes)
    if keys then return members_node(redis.call('SUNION', unpack(keys))) end
    local all = {}
    for _, node in ipairs(nodes) do
        for _, m in ipairs(members(node)) do all[#all + 1] = m end
    end
    return members_node(all)
end

-- The smallest set filtered by each other one: costs what the smallest holds.
local function intersection(nodes)
    local keys = plain_keys(nodes)
    if keys then return members_node(redis.call('SINTER', unpack(keys))) end
    local smallest, least = 1, nil
    for i, node in ipairs(nodes) do
        local n = size(node)
        if least == nil or n < least then smallest, least = i, n end
    end
    local list = members(nodes[smallest])
    for i, node in ipairs(nodes) do
        if i ~= smallest and #list > 0 then list = filter(list, node, true) end
    end
    return members_node(list)
end

local function difference(first, others)
    local nodes = {first}
    for i, node in ipairs(others) do nodes[i + 1] = node end
    local keys = plain_keys(nodes)
    if keys then return members_node(redis.call('SDIFF', unpack(keys))) end
    local list = members(first)
    for _, node in ipairs(others) do
        if #list > 0 then list = filter(list, node, false) end
    end
    return members_node(list)
end

local function members_of(key)
    local t = redis.call('TYPE', key)
    t = t.ok or t
    if t == 'set' then return redis.call('SMEMBERS', key)
    elseif t == 'zset' then return redis.call('ZRANGE', key, 0, -1)
    elseif t == 'list' then return redis.call('LRANGE', key, 0, -1)
    elseif t == 'none' then return {}
    end
    refuse('key_type', key, t)
end

local function read_source()
    local natoms = r.num()
    local nodes, pks = {}, {}
    for _ = 1, natoms do
        local kind = r.next()
        if kind == OP.set_key then
            nodes[#nodes + 1] = key_node(r.key())
        elseif kind == OP.lex_range or kind == OP.score_range then
            local key, min, max = r.key(), r.next(), r.next()
            local cmd = kind == OP.lex_range and 'ZRANGEBYLEX' or 'ZRANGEBYSCORE'
            for _, m in ipairs(redis.call(cmd, key, min, max)) do pks[#pks + 1] = pk_of(m) end
        elseif kind == OP.pk_list then
            for _, pk in ipairs(r.list(r.num())) do pks[#pks + 1] = pk end
        elseif kind == OP.field_exists then
            local prefix, suffix, sub, want = r.next(), r.next(), r.next(), r.next() == '1'
            for _, pk in ipairs(redis.call('SMEMBERS', collection)) do
                local exists
                if sub == '' then
                    exists = redis.call('EXISTS', prefix .. pk .. suffix) == 1
                else
                    exists = redis.call('HEXISTS', prefix .. pk .. suffix, sub) == 1
                end
                if exists == want then pks[#pks + 1] = pk end
            end
        elseif kind == OP.key_members or kind == OP.stored_list then
            local key = r.key()
            if kind == OP.stored_list and redis.call('EXISTS', key) == 0 then
                refuse('stored_missing', key)
            end
            for _, pk in ipairs(members_of(key)) do pks[#pks + 1] = pk end
        end
    end
    if #nodes == 1 and #pks == 0 then return nodes[1] end
    nodes[#nodes + 1] = members_node(pks)
    return union(nodes)
end

local function read_set()
    local tag = r.next()
    if tag == OP.collection then return key_node(collection) end
    if tag == OP.atoms then return read_source() end
    local nodes = {}
    for i = 1, r.num() do nodes[i] = read_set() end
    if tag == OP.intersection then return intersection(nodes) end
    if tag == OP.union then return union(nodes) end
    if tag == OP.difference then return difference(table.remove(nodes, 1), nodes) end
    if tag ~= OP.symmetric_difference then error('limpyd: unknown set ' .. tostring(tag)) end
    local a, b = nodes[1], nodes[2]
    local list = filter(members(a), b, false)
    for _, m in ipairs(filter(members(b), a, false)) do list[#list + 1] = m end
    return members_node(list)
end

-- The members of the expiry zset `key` whose time has passed: the server's time is read
-- only when the earliest one may have (most models have no expiring instance).
local function expired_members(key)
    local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    if #first == 0 then return first end
    local at = now()
    if tonumber(first[2]) > at then return {} end
    return redis.call('ZRANGEBYSCORE', key, '-inf', at)
end

local function run()
    local prefix, hash_suffix, expiry
    collection, prefix, hash_suffix, expiry = r.key(), r.next(), r.next(), r.key()
    local base = read_set()
    -- Instances whose time has passed are gone for every read, reaped or not.
    local gone = expired_members(expiry)
    if #gone > 0 then base = difference(base, {members_node(gone)}) end

    local sort_kind = r.next()
    local alpha, desc, by, sort_keys, pk_order, auto_pks, text_index
    if sort_kind == OP.by_indexed then
        sort_kind, text_index = r.next(), true
    end
    if sort_kind == OP.by_keys then
        sort_keys = {}
        for i = 1, r.num() do
            local kind, field = r.next(), r.next()
            sort_keys[i] = {kind = kind, by = field, alpha = r.next() == '1', desc = r.next() == '1'}
        end
        alpha, desc = false, false
    elseif sort_kind == OP.by_default then
        desc = r.next() == '1'
        pk_order = true  -- numeric if every pk is a decimal number: known once they are read
        sort_kind = OP.by_pk
    elseif sort_kind == OP.by_auto_pk then
        desc, pk_order, auto_pks = r.next() == '1', true, true
        sort_kind = OP.by_pk
    elseif sort_kind ~= OP.unsorted then
        alpha, desc = r.next() == '1', r.next() == '1'
    end
    if sort_kind == OP.by_string or sort_kind == OP.by_hash then
        by = r.next()
    elseif sort_kind == OP.by_score or sort_kind == OP.by_list then
        by = r.key()
        local want = sort_kind == OP.by_score and 'zset' or 'list'
        local t = redis.call('TYPE', by)
        t = t.ok or t
        if t ~= want and t ~= 'none' then refuse('sort_key_type', by, t, want) end
    end
    if text_index then text_index = r.key() end

    local slices = {}
    for i = 1, r.num() do
        local a, b, c = r.next(), r.next(), r.next()
        slices[i] = {tonumber(a), tonumber(b), tonumber(c) or 1}
    end

    local output = r.next()
    local specs, store_key, store_ttl, wanted = {}, nil, nil, nil
    if output == 'values' then specs = r.list(r.num()) end
    if output == 'store' then
        store_key, store_ttl = r.key(), r.next()
        if store_ttl ~= '' and not (store_ttl:match('^[1-9][0-9]*$') and #store_ttl <= STORE_TTL_DIGITS) then
            error('limpyd: a stored collection\'s ttl is a whole number of seconds of at most '
                .. STORE_TTL_DIGITS .. ' digits, not ' .. store_ttl)
        end
    end
    if output == 'any' then wanted = r.num() end

    -- A count needs neither the members nor their order.
    if output == 'count' then
        local n = size(base)
        for _, s in ipairs(slices) do n = count_of(n, s) end
        return n
    end
    -- Any k of the results (Model.get(): whether there are 0, 1 or more).
    if output == 'any' then
        if base.key then return redis.call('SRANDMEMBER', base.key, wanted) end
        return {unpack(base.list, 1, math.min(wanted, #base.list))}
    end

    -- Order: the pks in a Lua array, in the order asked (ties by pk, byte-wise).
    local items, prefetched
    -- a window of the collection by an indexed text: read in the index's order when every
    -- instance has an entry (else those with none, first in the order, are not there)
    if text_index and output == 'pks' and base.key == collection then
        local window = sort_window(slices)
        if window and redis.call('ZCARD', text_index) == redis.call('SCARD', collection) then
            if window[2] == 0 then return {} end
            local last = window[2] < 0 and -1 or window[1] + window[2] - 1
            local found = redis.call(desc and 'ZREVRANGE' or 'ZRANGE', text_index, window[1], last)
            for i, member in ipairs(found) do found[i] = pk_of(member) end
            return found
        end
    end
    -- the first ones of a stored set by an instance's text (one key, alpha): Redis's own
    -- SORT ... LIMIT when the window's end is no long tie, else (a few) one pass over the
    -- values, tried first when a sample of the values shows long ties
    local textual = sort_kind == OP.by_string or sort_kind == OP.by_hash
    if textual and alpha and C_COLLATION and output == 'pks' and base.key then
        local window = sort_window(slices)
        local stop = window and window[2] >= 0 and window[1] + window[2]
        if stop then
            local pattern = value_pattern(prefix, by, sort_kind == OP.by_hash and hash_suffix or nil)
            if stop == window[1] then return {} end
            local function value_of(pk)
                if sort_kind == OP.by_hash then return redis.call('HGET', prefix .. pk .. hash_suffix, by) end
                return redis.call('GET', prefix .. pk .. by)
            end
            local few = stop <= SELECT_LIMIT
            local top = not (few and likely_long_ties(base.key, value_of))
                and first_by_sort(base.key, pattern, stop, desc)
            if not top and few then top = first_by_text(base.key, pattern, stop, desc) end
            if top then
                local found = {}
                for i = window[1] + 1, math.min(stop, #top) do found[#found + 1] = top[i] end
                return found
            end
        end
    end
    local by_number = pk_order or (sort_kind == OP.by_pk and not alpha)
    if by_number and base.key and (output == 'values' or (auto_pks and output == 'pks')) then
        -- AutoPKField pks are canonical integers: SORT may select a window of them
        local window = auto_pks and sort_window(slices) or (#slices == 0 and {0, -1})
        local value_specs = output == 'values' and specs or nil
        local found = window
            and sorted_by_pk(base.key, desc, window, value_specs, not auto_pks, prefix, hash_suffix)
        if found then return found end
    end
    if output == 'values' and #slices == 0 and base.key then
        items, prefetched = rows_of_key(base.key, specs, prefix, hash_suffix)
    end
    items = items or members(base)
    -- the order (nil: none), how to sort the whole result in it, and to select from it
    local lt, full_sort, select
    local numeric_pks = {}  -- by pk, its number, when the pks are sorted numerically
    if (pk_order or (sort_kind == OP.by_pk and not alpha)) and canonical_integers(items) then
        lt = desc and function(a, b) return integer_lt(b, a) end or integer_lt
        full_sort = function(list) sort_integers(list, desc) end
        select = function(list, k, reversed)
            return first_k_integers(list, k, desc ~= reversed)
                or first_k(list, k, reversed and function(a, b) return lt(b, a) end or lt)
        end
        sort_kind = OP.unsorted
    elseif pk_order then
        alpha = false
        for _, pk in ipairs(items) do
            if not is_decimal(pk) then alpha = true; break end
            numeric_pks[pk] = tonumber(pk)
        end
    end
    if sort_kind ~= OP.unsorted then
        local positions = {}
        if sort_kind == OP.by_list then
            for i, m in ipairs(redis.call('LRANGE', by, 0, -1)) do
                if not positions[m] then positions[m] = i end
            end
        end
        local function sort_value(kind, field, pk)
            if kind == OP.by_pk then return pk
            elseif kind == OP.by_string then return redis.call('GET', prefix .. pk .. field)
            elseif kind == OP.by_hash then return redis.call('HGET', prefix .. pk .. hash_suffix, field)
            elseif kind == OP.by_list then return tostring(positions[pk] or 0)
            end
            return redis.call('ZSCORE', field, pk)
        end
        local bad -- a value no number, refused once every key is read
        local function sort_key(value, is_alpha, pk, kind, field)
            if is_alpha then return value or '' end
            if not value or value == '' then return 0 end
            if kind == OP.by_score or kind == OP.by_list then return tonumber(value) end
            if kind == OP.by_pk and numeric_pks[pk] then return numeric_pks[pk] end
            if not is_number(value) then
                -- the one of the smallest pk is named: the same whatever the set's order
                if not bad or bytes_lt(pk, bad[3]) then bad = {kind, field or '', pk, value} end
                return 0
            end
            return tonumber(value)
        end
        if sort_kind ~= OP.by_keys then
            sort_keys = {{kind = sort_kind, by = by, alpha = alpha, desc = desc}}
        end
        local single = #sort_keys == 1 and sort_keys[1]
        local keys = {}
        for _, pk in ipairs(items) do
            if single then
                keys[pk] = sort_key(sort_value(single.kind, single.by, pk), single.alpha, pk, single.kind, single.by)
            else
                local row = {}
                for i, k in ipairs(sort_keys) do row[i] = sort_key(sort_value(k.kind, k.by, pk), k.alpha, pk, k.kind, k.by) end
                keys[pk] = row
            end
        end
        if bad then refuse('not_numeric', bad[1], bad[2], bad[3], bad[4]) end
        local lt_single = single and (single.alpha and bytes_lt or native_lt)
        lt = single and function(a, b)
            local x, y = keys[a], keys[b]
            if x ~= y then
                if single.desc then return lt_single(y, x) end
                return lt_single(x, y)
            end
            if sort_kind ~= OP.by_keys and desc then return bytes_lt(b, a) end
            return bytes_lt(a, b)
        end or function(a, b)
            local ka, kb = keys[a], keys[b]
            for i, k in ipairs(sort_keys) do
                local x, y = ka[i], kb[i]
                if x ~= y then
                    local less
                    if k.alpha then less = bytes_lt(x, y) else less = x < y end
                    if k.desc then return not less end
                    return less
                end
            end
            -- ties: by pk, in the direction of a single key (as a sorted set would give them)
            if sort_kind ~= OP.by_keys and desc then return bytes_lt(b, a) end
            return bytes_lt(a, b)
        end
        full_sort = function(list) table.sort(list, lt) end
        select = function(list, k, reversed)
            return first_k(list, k, reversed and function(a, b) return lt(b, a) end or lt)
        end
    end

    local rest = 1
    if lt then
        items = order_and_slice(items, select, full_sort, slices[1])
        rest = 2
    end
    for i = rest, #slices do
        local picked = {}
        for _, p in ipairs(positions(#items, slices[i])) do picked[#picked + 1] = items[p + 1] end
        items = picked
    end

    if output == 'pks' then return items end
    if output == 'store' then
        -- the key holds the pks, nothing else: an empty result leaves no key
        redis.call('DEL', store_key)
        chunked('RPUSH', store_key, items)
        if store_ttl ~= '' and #items > 0 then redis.call('EXPIRE', store_key, store_ttl) end
        return #items
    end

    -- A row's hash fields come from one HMGET, its string fields from one MGET.
    local hashed, hash_at, strings, string_at = {}, {}, {}, {}
    for i, spec in ipairs(specs) do
        local kind = string.sub(spec, 1, 1)
        if kind == 'S' then
            strings[#strings + 1], string_at[#strings + 1] = string.sub(spec, 2), i
        elseif kind == 'H' then
            hashed[#hashed + 1], hash_at[#hashed + 1] = string.sub(spec, 3), i
        end
    end
    -- The rows, flat (row after row): a nested reply costs the server far more to send.
    local flat, width = {}, #specs
    if prefetched then
        for i, pk in ipairs(items) do
            local row, at = prefetched[pk], (i - 1) * width
            for j = 1, width do flat[at + j] = row[j] end
        end
        return flat
    end
    for n, pk in ipairs(items) do
        local at = (n - 1) * width
        for i, spec in ipairs(specs) do
            if spec == 'pk' then flat[at + i] = pk
            elseif spec == 'score' then flat[at + i] = sort_kind == OP.by_score and redis.call('ZSCORE', by, pk) or false
            end
        end
        if #hashed > 0 then
            local values = redis.call('HMGET', prefix .. pk .. hash_suffix, unpack(hashed))
            for j, i in ipairs(hash_at) do flat[at + i] = values[j] end
        end
        if #strings > 0 then
            local keys = {}
            for j, suffix in ipairs(strings) do keys[j] = prefix .. pk .. suffix end
            local values = redis.call('MGET', unpack(keys))
            for j, i in ipairs(string_at) do flat[at + i] = values[j] end
        end
    end
    return flat
end

return function(keys, argv, skip)
    r, collection = argv_reader(keys, argv, skip), nil
    local ok, result = pcall(run)
    if not ok then return redis.error_reply(error_text(result)) end
    return result
end
