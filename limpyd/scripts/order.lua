-- The order of a query's results, computed once for all pks: byte-wise and numeric
-- comparisons, Python's slices, the first k of a result without sorting it, and the reads
-- that Redis orders itself in C (SORT_RO, ZRANGE). Part of the query mode (see lua.py):
-- pure functions of their arguments, reading the server but never the query's ARGV.

-- Byte-wise (memcmp) order, whatever the server's locale. Lua compares strings with
-- strcoll: byte-wise already under the C locale (the usual case), detected here.
local function memcmp_lt(a, b)
    for i = 1, math.min(#a, #b) do
        local x, y = string.byte(a, i), string.byte(b, i)
        if x ~= y then return x < y end
    end
    return #a < #b
end
local function native_lt(a, b) return a < b end

-- Whether a pk is written as a decimal number: [+-] digits [. digits] [e [+-] digits]
-- (no spaces, hexadecimal, inf or nan, which Lua's tonumber would take).
local function is_decimal(s)
    if string.find(s, '^[+-]?%d+$') then return true end
    local sign = string.sub(s, 1, 1)
    if sign == '+' or sign == '-' then s = string.sub(s, 2) end
    local mantissa, exponent = string.match(s, '^([0-9.]+)(.*)$')
    if not mantissa or not string.find(mantissa, '%d') then return false end
    if select(2, string.gsub(mantissa, '%.', '')) > 1 then return false end
    return exponent == '' or string.match(exponent, '^[eE][+-]?[0-9]+$') ~= nil
end
-- Whether a value is a number for a numeric sort (limpyd/text.py's NUMBER, as a
-- NumberRangeIndex takes it): a decimal, or [+-]inf.
local function is_number(s)
    return is_decimal(s) or string.find(string.lower(s), '^[+-]?inf$') ~= nil
end
-- Whether every pk is a canonical integer ('0', or no leading zero, no sign but '-').
local function canonical_integers(pks)
    for _, pk in ipairs(pks) do
        if not (pk == '0' or string.find(pk, '^%-?[1-9]%d*$')) then return false end
    end
    return true
end

-- The order of canonical integers, exact at any length: by sign, then length, then digits.
local function integer_lt(a, b)
    local negative = string.byte(a, 1) == 45  -- '-'
    if negative ~= (string.byte(b, 1) == 45) then return negative end
    if #a ~= #b then return (#a < #b) ~= negative end
    return a ~= b and (a < b) ~= negative
end

-- Sort canonical integers in place. Up to 15 digits each is a number exact in a double:
-- sorting the numbers themselves needs no comparison function, and the common case (the
-- default order of auto-incremented pks) is several times faster this way.
local function sort_integers(pks, desc)
    local numbers, by_number = {}, {}
    for i, pk in ipairs(pks) do
        if #pk > 15 then
            table.sort(pks, desc and function(a, b) return integer_lt(b, a) end or integer_lt)
            return
        end
        local n = tonumber(pk)
        numbers[i], by_number[n] = n, pk
    end
    table.sort(numbers)
    local count = #numbers
    for i = 1, count do
        pks[i] = by_number[desc and numbers[count + 1 - i] or numbers[i]]
    end
end

local C_COLLATION = ('B' < 'a') and ('Z' < '_') and ('a' < '\255') and ('a\0b' < 'a\0c')
    and not ('\195\169' < 'f')
local bytes_lt = C_COLLATION and native_lt or memcmp_lt

-- Python's slice.indices(n).
local function indices(n, start, stop, step)
    if step == 0 then error('limpyd: slice step cannot be zero') end
    local lower, upper = 0, n
    if step < 0 then lower, upper = -1, n - 1 end
    local function clamp(v, default)
        if v == nil then return default end
        if v < 0 then
            v = v + n
            if v < lower then v = lower end
        elseif v > upper then
            v = upper
        end
        return v
    end
    if step < 0 then return clamp(start, upper), clamp(stop, lower) end
    return clamp(start, lower), clamp(stop, upper)
end

local function positions(n, s)
    local start, stop = indices(n, s[1], s[2], s[3])
    local out = {}
    local i = start
    while (s[3] > 0 and i < stop) or (s[3] < 0 and i > stop) do
        out[#out + 1] = i
        i = i + s[3]
    end
    return out
end

-- How many positions a slice of n items picks.
local function count_of(n, s)
    local start, stop = indices(n, s[1], s[2], s[3])
    local span = s[3] > 0 and stop - start or start - stop
    if span <= 0 then return 0 end
    return math.floor((span - 1) / math.abs(s[3])) + 1
end

-- The first k of `items` in the order `lt`, in that order, in one pass keeping a sorted
-- buffer of k: about n comparisons when k is small, where a sort makes n log n.
local function first_k(items, k, lt)
    local top = {}
    for _, x in ipairs(items) do
        local n = #top
        if n < k or lt(x, top[n]) then
            local i = n < k and n + 1 or n
            while i > 1 and lt(x, top[i - 1]) do top[i] = top[i - 1]; i = i - 1 end
            top[i] = x
        end
    end
    return top
end

-- first_k for canonical integers of up to 15 digits (exact in a double), compared as
-- numbers without a comparison function; nil when one is longer.
local function first_k_integers(items, k, desc)
    local numbers, by_number = {}, {}
    for i, pk in ipairs(items) do
        if #pk > 15 then return nil end
        local x = tonumber(pk)
        if desc then x = -x end
        numbers[i], by_number[x] = x, pk
    end
    local top = {}
    for _, x in ipairs(numbers) do
        local n = #top
        if n < k or x < top[n] then
            local i = n < k and n + 1 or n
            while i > 1 and x < top[i - 1] do top[i] = top[i - 1]; i = i - 1 end
            top[i] = x
        end
    end
    for i, x in ipairs(top) do top[i] = by_number[x] end
    return top
end

-- Below this many positions from either end, a slice selects instead of sorting.
local SELECT_LIMIT = 64

-- `items` in their order, with the first slice applied (or nil: none). A slice that keeps
-- only positions near one end selects them (`select(items, k, reversed)`: the first k in
-- the order, or in the reversed order) without sorting the rest (`full_sort(items)`).
local function order_and_slice(items, select, full_sort, slice)
    local n = #items
    local picked = slice and positions(n, slice)
    if picked then
        if #picked == 0 then return {} end
        local low, high = picked[1], picked[1]
        for _, p in ipairs(picked) do
            if p < low then low = p end
            if p > high then high = p end
        end
        local top, at
        if high < SELECT_LIMIT and high + 1 < n then
            top, at = select(items, high + 1, false), function(p) return p + 1 end
        elseif n - low <= SELECT_LIMIT and low > 0 then
            top, at = select(items, n - low, true), function(p) return n - p end
        end
        if top then
            local out = {}
            for i, p in ipairs(picked) do out[i] = top[at(p)] end
            return out
        end
    end
    full_sort(items)
    if not picked then return items end
    local out = {}
    for i, p in ipairs(picked) do out[i] = items[p + 1] end
    return out
end

-- The SORT GET pattern of an instance's value: its StringField's key (`field` is the key
-- suffix) or, with `hash_suffix`, its hash's field. '*' stands for the pk; neither a
-- namespace nor a model or field name can hold '*' or '->'.
local function value_pattern(prefix, field, hash_suffix)
    if hash_suffix then return prefix .. '*' .. hash_suffix .. '->' .. field end
    return prefix .. '*' .. field
end

-- The SORT_RO arguments reading, for each pk, '#' then the columns of `specs` (see
-- value_pattern), so that the server reads them in C, several times faster than a call
-- per row from Lua. Nil for a 'score' spec.
local function sort_gets(args, specs, prefix, hash_suffix)
    args[#args + 1], args[#args + 2] = 'GET', '#'
    for _, spec in ipairs(specs) do
        local kind = string.sub(spec, 1, 1)
        if spec == 'score' then return nil end
        args[#args + 1] = 'GET'
        if spec == 'pk' then args[#args + 1] = '#'
        elseif kind == 'S' then args[#args + 1] = value_pattern(prefix, string.sub(spec, 2))
        else args[#args + 1] = value_pattern(prefix, string.sub(spec, 3), hash_suffix)
        end
    end
    return args
end

-- The pks of the set at `key` and, by pk, their rows of `specs`, read by one SORT_RO (see
-- sort_gets). Nil for a 'score' spec, or when the server refuses the patterns (a cluster).
local function rows_of_key(key, specs, prefix, hash_suffix)
    local args = sort_gets({'SORT_RO', key, 'BY', 'nosort'}, specs, prefix, hash_suffix)
    if not args then return nil end
    local flat = redis.pcall(unpack(args))
    if flat.err then return nil end
    local items, rows, width = {}, {}, #specs + 1
    for i = 1, #flat, width do
        local pk, row = flat[i], {}
        for j = 1, #specs do row[j] = flat[i + j] end
        items[#items + 1], rows[pk] = pk, row
    end
    return items, rows
end

-- Whether every one of `pks` is a canonical integer of up to 15 digits: exact as a double,
-- so that SORT's numeric order is the default order. A few scans of their concatenation
-- in C (a pattern match per pk from Lua costs several times more).
local function short_canonical_integers(pks)
    if #pks == 0 then return true end
    local text = '\n' .. table.concat(pks, '\n') .. '\n'
    if select(2, string.gsub(text, '\n', '')) ~= #pks + 1 then return false end  -- a pk held '\n'
    return not (string.find(text, '[^%d\n-]')  -- no sign but '-', nothing but digits
        or string.find(text, '[^\n]%-')  -- '-' first
        or string.find(text, '\n%-?\n')  -- a digit at least
        or string.find(text, '\n%-?0%d') or string.find(text, '\n%-0\n')  -- no leading 0, no -0
        or string.find(text, '%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d'))  -- up to 15 digits
end

-- The LIMIT (offset, count) of SORT selecting `slices` of a sorted result: none, or one
-- slice of non-negative bounds and step 1. Nil for any other.
local function sort_window(slices)
    if #slices == 0 then return {0, -1} end
    local start, stop, step = slices[1][1] or 0, slices[1][2], slices[1][3]
    if #slices > 1 or step ~= 1 or start < 0 or (stop and stop < 0) then return nil end
    return {start, stop and math.max(stop - start, 0) or -1}
end

-- The set at `key` sorted by pk, numerically, by one SORT_RO in C: its pks, or (`specs`
-- given) its rows of `specs`, flat, at the positions `window` (see sort_window) when
-- given. SORT compares doubles: its order is the default order when every pk is a
-- canonical integer of up to 15 digits, which `check` verifies on the pks read (a window
-- would hide the others: `check` goes without one), else nil. Nil too for a 'score' spec,
-- or when the server refuses the patterns.
local function sorted_by_pk(key, desc, window, specs, check, prefix, hash_suffix)
    local args = {'SORT_RO', key}
    if window and (window[1] ~= 0 or window[2] ~= -1) then
        args[3], args[4], args[5] = 'LIMIT', window[1], window[2]
    end
    if desc then args[#args + 1] = 'DESC' end
    if specs and not sort_gets(args, specs, prefix, hash_suffix) then return nil end
    local flat = redis.pcall(unpack(args))
    if flat.err then return nil end  -- a pk that is no number
    local pks, rows = flat, flat
    if specs then
        local width = #specs + 1
        pks, rows = {}, {}
        for i = 1, #flat, width do
            pks[#pks + 1] = flat[i]
            for j = 1, width - 1 do rows[#rows + 1] = flat[i + j] end
        end
    end
    if check and not short_canonical_integers(pks) then return nil end
    return rows
end

-- The first `k` pks of the set at `key` by the text `pattern` names (the GET pattern of an
-- instance's value; a missing value is ''), byte-wise, ties by pk, both reversed with
-- `desc`: the values are read by one SORT_RO in C, and kept in one pass comparing strings
-- inline (C collation: Lua's `<` is byte-wise), as cheap per member as SORT's own sort.
-- Nil when the server refuses the pattern.
local function first_by_text(key, pattern, k, desc)
    local flat = redis.pcall('SORT_RO', key, 'BY', 'nosort', 'GET', '#', 'GET', pattern)
    if flat.err then return nil end
    local values, pks, n, worst, worst_pk = {}, {}, 0, nil, nil
    for i = 1, #flat, 2 do
        local pk, v = flat[i], flat[i + 1] or ''
        local keep = n < k
        if not keep then
            if desc then keep = v > worst or (v == worst and pk > worst_pk)
            else keep = v < worst or (v == worst and pk < worst_pk) end
        end
        if keep then
            local j = n < k and n + 1 or n
            while j > 1 do
                local pv, ppk = values[j - 1], pks[j - 1]
                local before
                if desc then before = v > pv or (v == pv and pk > ppk)
                else before = v < pv or (v == pv and pk < ppk) end
                if not before then break end
                values[j], pks[j], j = pv, ppk, j - 1
            end
            values[j], pks[j] = v, pk
            if n < k then n = n + 1 end
            worst, worst_pk = values[n], pks[n]
        end
    end
    return pks
end

-- A value's place in SORT ... ALPHA's order under the C locale: strcoll stops at a NUL, and
-- SORT puts a missing value (false) first, as limpyd's order puts '' first. Values of
-- different classes are in the same order in both; within a class SORT leaves ties in no
-- defined order.
local function alpha_class(v)
    if not v then return '' end
    local z = string.find(v, '\0', 1, true)
    return z and string.sub(v, 1, z - 1) or v
end

-- Rows SORT reads past a window, to see where the ties of the window's last value end: a
-- few, then (when those are all tied) many.
local SORT_SLACKS = {16, 1024}

-- The first `k` pks of the set at `key` in the order of first_by_text, read by Redis's own
-- SORT_RO BY <pattern> ALPHA LIMIT (a partial sort in C, what redis-limpyd sends), k rows
-- and a slack: SORT orders values by class (see alpha_class), so its rows up to the end of
-- the kth's class hold our first k, which are sorted here. Nil when that class goes on past
-- the rows read with every slack, or the server refuses the pattern.
local function first_by_sort(key, pattern, k, desc)
    for _, slack in ipairs(SORT_SLACKS) do
        local args = {'SORT_RO', key, 'BY', pattern, 'LIMIT', 0, k + slack, 'ALPHA'}
        if desc then args[#args + 1] = 'DESC' end
        args[#args + 1], args[#args + 2], args[#args + 3], args[#args + 4] = 'GET', '#', 'GET', pattern
        local flat = redis.pcall(unpack(args))
        if flat.err then return nil end
        local n, last = #flat / 2, math.min(#flat / 2, k)
        if n > k then
            local class = alpha_class(flat[2 * k])
            while last < n and alpha_class(flat[2 * last + 2]) == class do last = last + 1 end
        end
        if last < k + slack then
            local rows = {}
            for i = 1, last do rows[i] = {flat[2 * i - 1], flat[2 * i] or ''} end
            if desc then
                table.sort(rows, function(a, b)
                    if a[2] ~= b[2] then return a[2] > b[2] end
                    return a[1] > b[1]
                end)
            else
                table.sort(rows, function(a, b)
                    if a[2] ~= b[2] then return a[2] < b[2] end
                    return a[1] < b[1]
                end)
            end
            local pks = {}
            for i = 1, math.min(k, last) do pks[i] = rows[i][1] end
            return pks
        end
    end
    return nil
end

-- Whether some value of the set at `key` is likely held by more than half the largest
-- slack of first_by_sort (which would then read SORT's rows in vain), as estimated from
-- 32 random members of a set too large for that slack, whose values `value_of(pk)` reads.
-- Only what a query costs depends on it, never what it answers.
local function likely_long_ties(key, value_of)
    local largest = SORT_SLACKS[#SORT_SLACKS]
    local n = redis.call('SCARD', key)
    if n <= largest then return false end
    local sample = redis.call('SRANDMEMBER', key, 32)
    local counts, most = {}, 1
    for _, pk in ipairs(sample) do
        local class = alpha_class(value_of(pk))
        counts[class] = (counts[class] or 0) + 1
        if counts[class] > most then most = counts[class] end
    end
    return most > 1 and n * most / #sample > largest / 2
end
