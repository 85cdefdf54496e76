-- wrk script of benchmarks/sharp_peer.py: walk the request paths listed in the file
-- $WALK_PATHS, in order, round and round (one wrk thread: one list shared by all
-- connections), so every server sees the same seeded sequence.
local paths = {}
for line in io.lines(os.getenv("WALK_PATHS")) do
  if #line > 0 then paths[#paths + 1] = line end
end
local i = 0
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
