-- wrk script: POSTs the same login form again and again (scripts/bench-auth).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Cookie"] = os.getenv("FLOOD_COOKIE")
wrk.body = os.getenv("FLOOD_BODY")
