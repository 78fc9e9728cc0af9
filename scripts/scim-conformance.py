"""Runs scim2-tester's checks against a SCIM service and prints one line per
check. Exits non-zero when a check fails, or is skipped without being on the
list of skips the README justifies.

    scim-conformance.py BASE_URL TOKEN
"""

import sys

from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

# Each is justified in the README ("SCIM conformance").
JUSTIFIED_SKIPS = {"search_with_attributes"}

base_url, token = sys.argv[1], sys.argv[2]
http = Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
client = SyncSCIMClient(http)
results = check_server(client)

counts = {}
bad = []
for r in results:
    counts[r.status.name] = counts.get(r.status.name, 0) + 1
    where = f" [{r.resource_type}]" if r.resource_type else ""
    print(f"{r.status.name:<10} {r.title}{where}: {r.reason}")
    if r.status in (Status.ERROR, Status.CRITICAL):
        bad.append(r)
    elif r.status == Status.SKIPPED and r.title not in JUSTIFIED_SKIPS:
        bad.append(r)

print("scim2-tester:", ", ".join(f"{n.lower()} {c}" for n, c in sorted(counts.items())))
if bad:
    print(f"{len(bad)} check(s) failed or were skipped without justification", file=sys.stderr)
    sys.exit(1)
