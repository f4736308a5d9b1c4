"""A smoke test of the Python client generated from the spec, against a live server: typed
calls only, and every answer parses into its documented type (no field left over in
`additional_properties`, which is where the client puts fields the spec does not name).
The whole product scenario is scenario.py (and tests/scenario.rs); this checks the spec's
examples and the generated code itself.

Usage: python3 smoke.py BASE_URL SPEC   (BASE_URL without `/api`; the package `tasker_client`
must be importable)
"""

import json
import sys
import uuid

from tasker_client import AuthenticatedClient, Client
from tasker_client.api.auth import register
from tasker_client.api.tasks import create_task, get_task, replace_task, search_tasks
from tasker_client.models import (
    AuthResponse,
    CreateTaskRequest,
    ErrorCode,
    Priority,
    Problem,
    RegisterRequest,
    ReplaceTaskRequest,
    SearchPage,
    Task,
    TaskStatus,
)
from tasker_client.types import Unset


def parsed(response, kind, status):
    assert response.status_code == status, (response.status_code, response.content)
    assert isinstance(response.parsed, kind), (type(response.parsed), response.content)
    leftover = getattr(response.parsed, "additional_properties", {})
    assert not leftover, f"fields the spec does not name: {sorted(leftover)}"
    return response.parsed


def main():
    base, spec_path = sys.argv[1], sys.argv[2]
    with open(spec_path, encoding="utf-8") as f:
        schemas = json.load(f)["components"]["schemas"]

    def example(name):
        return schemas[name]["example"]

    # The spec's examples, as Swagger UI sends them.
    anonymous = Client(base_url=base + "/api", raise_on_unexpected_status=True)
    body = RegisterRequest.from_dict(example("RegisterRequest"))
    body.email = f"smoke-{uuid.uuid4().hex[:8]}@example.com"
    auth = parsed(register.sync_detailed(client=anonymous, body=body), AuthResponse, 201)
    client = AuthenticatedClient(base_url=base + "/api", token=auth.token, raise_on_unexpected_status=True)

    body = CreateTaskRequest.from_dict(example("CreateTaskRequest"))
    task = parsed(create_task.sync_detailed(client=client, body=body), Task, 201)
    assert task.status == TaskStatus.TODO and task.priority == Priority.HIGH, task
    assert task.due_date is not None and task.due_date.year == 2027, task.due_date
    # A field answered as `null` parses (a personal task has no project).
    assert task.project_id is None, task.project_id

    # A nullable enum sent as null (leaves it unchanged) and one sent as a value.
    change = ReplaceTaskRequest(status=TaskStatus.IN_PROGRESS, priority=None)
    task = parsed(replace_task.sync_detailed(task.id, client=client, body=change), Task, 200)
    assert task.status == TaskStatus.IN_PROGRESS and task.priority == Priority.HIGH, task

    again = parsed(get_task.sync_detailed(task.id, client=client), Task, 200)
    assert again.id == task.id

    # Search takes `q` (required); its page parses even while the index catches up.
    page = parsed(search_tasks.sync_detailed(client=client, q="release"), SearchPage, 200)
    assert isinstance(page.next_cursor, (str, type(None), Unset)), page.next_cursor

    # Errors parse into Problem with a typed code.
    problem = parsed(get_task.sync_detailed(uuid.uuid4(), client=client), Problem, 404)
    assert problem.code == ErrorCode.NOT_FOUND, problem.code
    print("python client smoke test: ok")


if __name__ == "__main__":
    main()
