-- Pipelined load for wrk: every write carries `depth` GET requests (default 16), as in wrk's own
-- scripts/pipeline.lua. Usage: wrk -s bench/wrk/pipeline.lua URL -- 16
local depth = 16
local req

init = function(args)
  depth = tonumber(args[1]) or depth
  local requests = {}
  for i = 1, depth do
    requests[i] = wrk.format(nil, "/")
  end
  req = table.concat(requests)
end

request = function()
  return req
end
