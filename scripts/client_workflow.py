"""A short admin workflow through the Python client generated from the API's
own OpenAPI document (scripts/generated-clients.sh makes it): no hand-written
HTTP here, so whatever the document gets wrong about an operation shows up as
a failure. Needs FRONTDESK_API (the API's base URL), FRONTDESK_API_KEY (a
staff owner's key) and, for the operations that take a session and never a
key, FRONTDESK_ADMIN_EMAIL and FRONTDESK_ADMIN_PASSWORD (a staff admin's
sign-in) and FRONTDESK_SESSION_COOKIE (the session cookie's name, from the
document's `session` security scheme)."""

import io
import os
import secrets
import sys

from frontdesk_client import AuthenticatedClient, Client
from frontdesk_client.api.api_keys import api_keys_create, api_keys_list, api_keys_revoke
from frontdesk_client.api.sign_in import sign_in
from frontdesk_client.api.import_and_export import export_users, import_users
from frontdesk_client.api.tags import tags_assign, tags_create
from frontdesk_client.api.users import users_list, users_restore, users_suspend
from frontdesk_client.models import (
    CreatedApiKey,
    ApiKeyList,
    ExportUsersFieldsItem,
    ImportReportOut,
    ImportReportOutMode,
    ImportUsersMode,
    NewApiKey,
    NewTag,
    Problem,
    RowOutcome,
    SignedIn,
    SignIn,
    UserDetail,
    UserList,
    UserStatus,
)
from frontdesk_client.types import File

failures = []


def check(what, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + what + (f": {detail}" if detail and not ok else ""))
    if not ok:
        failures.append(what)


client = AuthenticatedClient(
    base_url=os.environ["FRONTDESK_API"],
    token=os.environ["FRONTDESK_API_KEY"],
    raise_on_unexpected_status=True,
)

# Two fresh tags on two users, then the list filtered by both (any of them).
page = users_list.sync(client=client, limit=10)
check("list users", isinstance(page, UserList) and len(page.users) >= 3, repr(page))
first, second, third = page.users[0], page.users[1], page.users[2]
suffix = secrets.token_hex(4)
tag_a = tags_create.sync(client=client, body=NewTag(name=f"workflow-a-{suffix}"))
tag_b = tags_create.sync(client=client, body=NewTag(name=f"workflow-b-{suffix}"))
check("create two tags", tag_a is not None and tag_b is not None and tag_a.id != tag_b.id)
for user, tag in ((first, tag_a), (second, tag_b)):
    r = tags_assign.sync_detailed(user.id, tag.id, client=client)
    check(f"tag user {user.id}", r.status_code == 204, r.status_code)
tagged = users_list.sync(client=client, tags_any=[tag_a.id, tag_b.id])
ids = sorted(u.id for u in tagged.users) if isinstance(tagged, UserList) else tagged
check("list with two tag filters", ids == sorted([first.id, second.id]), ids)
both = users_list.sync(client=client, tags_all=[tag_a.id, tag_b.id])
check("all of two tags", isinstance(both, UserList) and both.users == [], both)

# Suspend without a body, then restore.
suspended = users_suspend.sync(third.id, client=client)
check(
    "suspend without a body",
    isinstance(suspended, UserDetail) and suspended.status == UserStatus.SUSPENDED,
    suspended,
)
restored = users_restore.sync(third.id, client=client)
check("restore", isinstance(restored, UserDetail) and restored.status != UserStatus.SUSPENDED, restored)

# A dry run of an import: one new user, one bad row, nothing written.
csv = f"email,first_name,last_name\nnew-{suffix}@example.com,New,Row\nnot-an-address,Bad,Row\n".encode()
report = import_users.sync(
    client=client,
    body=File(payload=io.BytesIO(csv), file_name="users.csv", mime_type="text/csv"),
    mode=ImportUsersMode.DRY_RUN,
)
check(
    "import dry run",
    isinstance(report, ImportReportOut)
    and report.mode == ImportReportOutMode.DRY_RUN
    and not report.applied
    and (report.created, report.rejected) == (1, 1)
    and [r.row for r in report.rows if r.outcome == RowOutcome.REJECTED] == [3],
    report,
)
after = users_list.sync(client=client, search=f"new-{suffix}")
check("the dry run wrote nothing", isinstance(after, UserList) and after.users == [], after)

# An export of two fields, filtered by a tag.
exported = export_users.sync_detailed(
    client=client,
    fields=[ExportUsersFieldsItem.EMAIL, ExportUsersFieldsItem.FIRST_NAME],
    tags_any=[tag_a.id],
)
lines = exported.content.decode().splitlines()
check(
    "export two fields",
    exported.status_code == 200 and lines == ["email,first_name", f"{first.email},{first.first_name}"],
    lines,
)

# API keys are managed with a signed-in admin's session: a key is told so,
# in the documented problem shape.
keys = api_keys_list.sync_detailed(client=client)
check(
    "API keys refuse a key, as documented",
    keys.status_code == 403
    and isinstance(keys.parsed, Problem)
    and keys.parsed.type_ == "urn:frontdesk:problem:forbidden",
    (keys.status_code, keys.parsed),
)

# ... and made, listed and revoked with an admin's session, signed in through
# the document's own sign-in operation (its cookie, and its CSRF token on the
# unsafe calls).
base = os.environ["FRONTDESK_API"]
cookie_name = os.environ["FRONTDESK_SESSION_COOKIE"]
anonymous = Client(base_url=base)
signed = sign_in.sync_detailed(
    client=anonymous,
    body=SignIn(
        email=os.environ["FRONTDESK_ADMIN_EMAIL"],
        password=os.environ["FRONTDESK_ADMIN_PASSWORD"],
    ),
)
check(
    "sign in through the API",
    signed.status_code == 200 and isinstance(signed.parsed, SignedIn),
    (signed.status_code, signed.parsed),
)
if isinstance(signed.parsed, SignedIn):
    session = Client(
        base_url=base,
        cookies={cookie_name: anonymous.get_httpx_client().cookies.get(cookie_name) or ""},
        headers={"X-CSRF-Token": signed.parsed.csrf_token},
    )
    made = api_keys_create.sync_detailed(
        client=session, body=NewApiKey(name=f"workflow {secrets.token_hex(3)}", role="viewer")
    )
    check(
        "an API key made with the session",
        made.status_code == 201
        and isinstance(made.parsed, CreatedApiKey)
        and made.parsed.secret.startswith("fdk_"),
        (made.status_code, made.parsed),
    )
    if isinstance(made.parsed, CreatedApiKey):
        key_id = made.parsed.api_key.id
        listed = api_keys_list.sync_detailed(client=session)
        check(
            "listed with the session",
            listed.status_code == 200
            and isinstance(listed.parsed, ApiKeyList)
            and any(k.id == key_id for k in listed.parsed.api_keys),
            (listed.status_code, listed.parsed),
        )
        revoked = api_keys_revoke.sync_detailed(id=key_id, client=session)
        check("revoked with the session", revoked.status_code == 204, revoked.status_code)

if failures:
    print(f"{len(failures)} step(s) failed: {', '.join(failures)}", file=sys.stderr)
    sys.exit(1)
print("the workflow passed through the generated client")
