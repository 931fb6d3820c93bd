-- wrk script: POST the bodies of a file (one JSON body per line) in turn.
-- wrk -s bench/post.lua URL -- BODIES_FILE
local requests = {}
local index = 0

function init(args)
  local path = wrk.path
  for line in io.lines(args[1]) do
    if #line > 0 then
      requests[#requests + 1] = wrk.format("POST", path, {["Content-Type"] = "application/json"}, line)
    end
  end
  index = math.random(#requests)
end

function request()
  index = index % #requests + 1
  return requests[index]
end
