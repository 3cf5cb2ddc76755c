"""A short session with the Python client generated from docs/openapi.json, as a team
consuming the API would write it: it registers a tenant, signs in, creates a task and
reads it back. `contract/check client` generates and installs the client, then runs
this against a served Keystone. Nothing in the client is edited by hand.

    python client_smoke.py http://127.0.0.1:8080
"""

import sys
import uuid

from keystone_client import AuthenticatedClient, Client
from keystone_client.api.auth import login, register_tenant
from keystone_client.api.tasks import create_task, get_task
from keystone_client.models import Credentials, NewTask, Problem, Registered, Registration, Task, Tokens


def expect(kind, answer):
    if not isinstance(answer, kind):
        sys.exit(f"expected {kind.__name__}, got {answer!r}")
    return answer


def main(base_url):
    name = f"smoke{uuid.uuid4().hex[:12]}"
    email, password = f"{name}@example.com", "a client's password"
    public = Client(base_url=base_url, raise_on_unexpected_status=True)

    registered = expect(Registered, register_tenant.sync(client=public, body=Registration(
        tenant_name="Client smoke", email=email, username=name, password=password)))
    tokens = expect(Tokens, login.sync(client=public, body=Credentials(email=email, password=password)))
    assert tokens.token_type == "Bearer"

    client = AuthenticatedClient(base_url=base_url, token=tokens.access_token,
                                 raise_on_unexpected_status=True)
    created = create_task.sync_detailed(
        client=client, body=NewTask(title="Call the API from Python", checklist=["Generate", "Use"]),
        idempotency_key=str(uuid.uuid4()))
    task = expect(Task, created.parsed)
    assert created.status_code == 201, created.status_code
    assert created.headers["ETag"] == f'"{task.version}"'

    read = get_task.sync_detailed(task.id, client=client)
    again = expect(Task, read.parsed)
    assert again.id == task.id and again.title == "Call the API from Python"
    assert [item.text for item in again.checklist] == ["Generate", "Use"]
    assert again.creator_id == registered.user.id and again.tenant_id == registered.tenant.id

    missing = get_task.sync(uuid.uuid4(), client=client)
    assert isinstance(missing, Problem) and missing.code == "not_found", missing
    print(f"registered {email}, signed in, created task {task.id} and read it back")


if __name__ == "__main__":
    main(sys.argv[1])
