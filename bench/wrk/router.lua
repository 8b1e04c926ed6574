-- Load for the effect-http suite: GET /hello, GET /json and POST /echo (a 32-byte body) in turn. Each write carries
-- `depth` requests (default 1: keep-alive; 16: pipelined). Usage: wrk -s bench/wrk/router.lua URL -- 16
local depth = 1
local batches = {}
local next = 0

init = function(args)
  depth = tonumber(args[1]) or depth
  local requests = {
    wrk.format("GET", "/hello"),
    wrk.format("GET", "/json"),
    wrk.format("POST", "/echo", { ["Content-Type"] = "text/plain" }, "ping pong ping pong ping pong 32")
  }
  -- three batches, each starting one request later in the cycle, so every batch mixes all three
  for k = 1, 3 do
    local parts = {}
    for j = 1, depth do
      parts[j] = requests[((k + j - 2) % 3) + 1]
    end
    batches[k] = table.concat(parts)
  end
end

request = function()
  next = next % 3 + 1
  return batches[next]
end
