"""Provisions users, then groups of them, through a SCIM service the way a
directory's first sync does, and prints requests/s and the total time.

    scim-bench.py BASE_URL TOKEN [USERS=10000] [GROUPS=100] [MEMBERS=100] [WORKERS=4]
"""

import sys
import time
from concurrent.futures import ThreadPoolExecutor

from httpx2 import Client

base_url, token = sys.argv[1], sys.argv[2]
users, groups, members, workers = (
    [int(a) for a in sys.argv[3:7]] + [10000, 100, 100, 4][len(sys.argv[3:7]):]
)
headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}
clients = [Client(base_url=base_url, headers=headers, timeout=60) for _ in range(workers)]


def post(i, path, body):
    r = clients[i % workers].post(path, json=body)
    if r.status_code != 201:
        raise SystemExit(f"{path}: {r.status_code} {r.text}")
    return r.json()["id"]


def user(i):
    return post(i, "/Users", {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": f"bench{i}@bench.test",
        "externalId": f"ext-{i}",
        "name": {"givenName": f"Given{i}", "familyName": f"Family{i}"},
        "emails": [{"value": f"bench{i}@bench.test", "type": "work", "primary": True}],
        "active": True,
    })


def run(label, n, job):
    start = time.monotonic()
    with ThreadPoolExecutor(workers) as pool:
        out = list(pool.map(job, range(n)))
    took = time.monotonic() - start
    print(f"{label}: {n} requests in {took:.1f} s, {n / took:.0f} requests/s")
    return out, took


ids, t_users = run(f"{users} users", users, user)
_, t_groups = run(
    f"{groups} groups of {members} members",
    groups,
    lambda g: post(g, "/Groups", {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": f"Bench group {g}",
        "members": [{"value": ids[(g * members + k) % len(ids)]} for k in range(members)],
    }),
)
print(f"total: {t_users + t_groups:.1f} s ({workers} concurrent requests)")
