-- wrk script: POSTs the sign-up form, a new address each time (scripts/bench-auth).
local thread_no = 0
local n = 0

function setup(thread)
  thread:set("tid", thread_no)
  thread_no = thread_no + 1
end

request = function()
  n = n + 1
  local body = string.format(
    "email=bench-%s-%d-%d%%40example.com&first_name=Bench&last_name=User&password=%s&csrf_token=%s",
    os.getenv("FLOOD_RUN"), tid, n, os.getenv("FLOOD_PASSWORD"), os.getenv("FLOOD_CSRF"))
  return wrk.format("POST", nil, {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Cookie"] = os.getenv("FLOOD_COOKIE"),
  }, body)
end
