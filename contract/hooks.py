"""schemathesis hooks for `contract/check fuzz`: what an operation that destroys its
resource needs to find one every time.

contract/check seeds spares and names them in contract/schemathesis.toml. Deleting a
task or a user, or removing a checklist item, would use its spare up at the first
success and answer 404 to every request after it; so before each such request that
names the spare (and not a value a generator made up, which must stay as it is), this
makes a fresh one as the tenant's admin and names that instead.
"""

import json
import os
import urllib.request
import uuid

import schemathesis

BASE = os.environ["CONTRACT_BASE_URL"]
ADMIN = os.environ["CONTRACT_ADMIN_TOKEN"]


def call(method, path, body):
    request = urllib.request.Request(f"{BASE}{path}", method=method, data=json.dumps(body).encode())
    request.add_header("Content-Type", "application/json")
    request.add_header("Authorization", f"Bearer {ADMIN}")
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


def fresh_task():
    return call("POST", "/api/v1/tasks", {"title": "A spare", "checklist": ["A spare item"]})


def fresh_user():
    name = f"spare{uuid.uuid4().hex[:16]}"
    return call("POST", "/api/v1/users", {
        "email": f"{name}@example.com", "username": name, "password": "a spare's password",
        "role": "member"})


@schemathesis.hook
def before_call(context, case, kwargs):
    parameters = case.path_parameters
    operation = case.operation.definition.raw.get("operationId")
    if operation == "delete_task" and parameters.get("id") == os.environ["CONTRACT_SPARE_TASK_ID"]:
        case.path_parameters = {**parameters, "id": fresh_task()["id"]}
    elif operation == "delete_user" and parameters.get("id") == os.environ["CONTRACT_SPARE_USER_ID"]:
        case.path_parameters = {**parameters, "id": fresh_user()["id"]}
    elif (operation == "remove_checklist_item"
          and parameters.get("item_id") == os.environ["CONTRACT_SPARE_ITEM_ID"]):
        task = fresh_task()
        case.path_parameters = {**parameters, "id": task["id"], "item_id": task["checklist"][0]["id"]}
