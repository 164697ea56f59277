-- wrk script: PUTs of one body, each to a key no other request of the run uses.
--
--   wrk ... -s wrk-put.lua URL -- <body file> <threads> <path prefix> [header ...]
--       native API: the n-th request of a thread goes to <path prefix><thread>-<n>, unsigned
--   wrk ... -s wrk-put.lua URL -- <body file> <threads> @<requests file> [header ...]
--       S3: the requests file has one pre-signed request per line, "<path> <Authorization value>";
--       thread t sends lines t+1, t+1+threads, ... (signatures cannot be computed in wrk's Lua)
--
-- Every extra argument is a header line sent with every request ("x-amz-date: ..."). done() prints
-- "bench-keys used=<requests made> reused=<requests beyond a thread's pre-signed lines>": a run that
-- reused keys sent some twice, and the driver refuses its figure.

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

local paths, auths = {}, {}
local prefix
local head, tail
local n = 0
used = 0
available = 0

function init(args)
  local file = assert(io.open(args[1], "rb"))
  local body = file:read("*a")
  file:close()
  local count = tonumber(args[2])
  local target = args[3]
  local extra = ""
  for i = 4, #args do extra = extra .. args[i] .. "\r\n" end
  head = " HTTP/1.1\r\nHost: " .. wrk.headers["Host"] .. "\r\n" .. extra
  tail = "Content-Type: application/octet-stream\r\nContent-Length: " .. #body .. "\r\n\r\n" .. body
  if target:sub(1, 1) == "@" then
    local line_number = 0
    for line in io.lines(target:sub(2)) do
      if line_number % count == id then
        local path, auth = line:match("^(%S+) (.+)$")
        n = n + 1
        paths[n] = path
        auths[n] = "Authorization: " .. auth .. "\r\n"
      end
      line_number = line_number + 1
    end
    available = n
  else
    prefix = target .. id .. "-"
  end
end

function request()
  used = used + 1
  if prefix then
    return "PUT " .. prefix .. used .. head .. tail
  end
  local i = (used - 1) % n + 1
  return "PUT " .. paths[i] .. head .. auths[i] .. tail
end

function done(summary, latency, requests)
  local total_used, reused = 0, 0
  for _, thread in ipairs(threads) do
    local thread_used, thread_available = thread:get("used"), thread:get("available")
    total_used = total_used + thread_used
    if thread_available > 0 and thread_used > thread_available then reused = reused + thread_used - thread_available end
  end
  io.write(string.format("bench-keys used=%d reused=%d\n", total_used, reused))
end
