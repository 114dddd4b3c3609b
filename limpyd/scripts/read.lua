-- Read the states a write depends on, and simulate modifiers on a scratch copy.
-- ARGV: a sequence of requests:
--   state kind key sub               -> state
--   simulate kind key sub scratch n cmd args(n-1)
--        -> {state, {'R', result} or {'E', error}, new state}, the command run on a copy of
--        the state in the key `scratch` (under the model's prefix), deleted before returning
-- Keys are declared (their positions in KEYS).
return function(keys, argv, skip)
    local r = argv_reader(keys, argv, skip)
    local out = {}
    while not r.done() do
        local op, kind, key, sub = r.next(), r.next(), r.key(), r.next()
        local state = read_state(kind, key, sub)
        if op == OP.state then
            out[#out + 1] = state
        elseif op == OP.simulate then
            local scratch = r.key()
            local n = r.num()
            local cmd = r.next()
            local args = {cmd, scratch}
            for _, arg in ipairs(r.list(n - 1)) do args[#args + 1] = arg end
            redis.call('DEL', scratch)
            write_state(kind, scratch, sub, state)
            local res = call_many(args, true)
            local outcome
            if type(res) == 'table' and res.err then
                outcome = {'E', error_text(res)}
            elseif type(res) == 'table' and res.ok then
                outcome = {'R', res.ok}
            else
                outcome = {'R', res}
            end
            local new_state = read_state(kind, scratch, sub)
            redis.call('DEL', scratch)
            out[#out + 1] = {state, outcome, new_state}
        else
            return redis.error_reply('limpyd: unknown request ' .. tostring(op))
        end
    end
    return out
end
