-- Read the states a write depends on, and simulate modifiers on a scratch copy.
-- ARGV: a sequence of requests:
--   'S' kind key sub                 -> state
--   'M' kind key sub n cmd args(n-1) -> {state, {'R', result} or {'E', error}, new state}
-- The scratch key lives only inside this (atomic) script.
local SCRATCH = '__limpyd_scratch__'
local r = argv_reader(ARGV)
local out = {}
while not r.done() do
    local op, kind, key, sub = r.next(), r.next(), r.next(), r.next()
    local state = read_state(kind, key, sub)
    if op == 'S' then
        out[#out + 1] = state
    else
        local n = r.num()
        local cmd = r.next()
        local args = {cmd, SCRATCH}
        for _, arg in ipairs(r.list(n - 1)) do args[#args + 1] = arg end
        redis.call('DEL', SCRATCH)
        write_state(kind, SCRATCH, sub, state)
        local res = call_many(args, true)
        local outcome
        if type(res) == 'table' and res.err then
            outcome = {'E', error_text(res)}
        elseif type(res) == 'table' and res.ok then
            outcome = {'R', res.ok}
        else
            outcome = {'R', res}
        end
        local new_state = read_state(kind, SCRATCH, sub)
        redis.call('DEL', SCRATCH)
        out[#out + 1] = {state, outcome, new_state}
    end
end
return out
