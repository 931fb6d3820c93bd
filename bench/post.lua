-- wrk script: POST the body templates of a file (one a line) in turn, each request with a
-- fresh message id in place of @ID@, so relay sees distinct deliveries (no deduplication).
-- wrk -s bench/post.lua URL -- TEMPLATES_FILE ID_BASE
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

local templates = {}
local index = 0
local counter = 0
local base = 0

local function split(line)
  local parts, start = {}, 1
  while true do
    local at = string.find(line, "@ID@", start, true)
    if not at then
      parts[#parts + 1] = string.sub(line, start)
      return parts
    end
    parts[#parts + 1] = string.sub(line, start, at - 1)
    start = at + 4
  end
end

local thread_count = 0
function setup(thread)
  thread:set("tid", thread_count)
  thread_count = thread_count + 1
end

function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then
      templates[#templates + 1] = split(line)
    end
  end
  base = tonumber(args[2] or "0") + (tid or 0) * 100000000
  index = math.random(#templates)
end

function request()
  counter = counter + 1
  index = index % #templates + 1
  return wrk.format(nil, nil, nil, table.concat(templates[index], string.format("%d", base + counter)))
end
