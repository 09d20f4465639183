"""The Flask receiver: token check, payload checks, body limit, 202 and /health."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from moment_webhooks.app import create_app
from moment_webhooks.trigger import JobTrigger

TOKEN = "Zx9_very-secret-path-token-0123456789"
INVOICE_EVENT = {
    "event": "CREATE_NEW",
    "invoice": {
        "id": 106939080,
        "invoiceNumber": 1,
        "customer": {"id": 62788973, "customerNumber": "10001"},
        "project": {"id": 62788980, "projectNumber": "1"},
    },
}


@pytest.fixture
def trigger(tmp_path: Path, make_runner: Any, clock: Any) -> JobTrigger:
    # Not started: these tests look at what was queued, not at runs.
    return JobTrigger(make_runner(), lock_path=tmp_path / "t.lock", tenant="acme", clock=clock)


@pytest.fixture
def client(trigger: JobTrigger) -> FlaskClient:
    app = create_app(
        trigger,
        path_token=TOKEN,
        entity_types=frozenset({"customers", "projects", "invoices"}),
        max_body_bytes=2048,
    )
    return app.test_client()


def test_invoice_webhook_is_accepted_and_queues_a_run(
    client: FlaskClient, trigger: JobTrigger
) -> None:
    response = client.post(f"/hooks/{TOKEN}/invoices", json=INVOICE_EVENT)
    assert response.status_code == 202
    assert response.get_json() == {"accepted": True, "triggered": True}
    status = trigger.status()
    assert status["queued_triggers"] == 1


def test_undocumented_customer_payload_without_content_type_is_accepted(
    client: FlaskClient, trigger: JobTrigger
) -> None:
    body = json.dumps({"event": "UPDATE", "customer": {"id": 7, "customerNumber": "10007"}})
    response = client.post(f"/hooks/{TOKEN}/customers", data=body, content_type="text/plain")
    assert response.status_code == 202
    assert trigger.status()["queued_triggers"] == 1


def test_wrong_token_is_an_indistinguishable_404(client: FlaskClient, trigger: JobTrigger) -> None:
    unknown = client.post("/no/such/path", json=INVOICE_EVENT)
    for token in ("wrong", TOKEN[:-1], TOKEN + "x", TOKEN.upper()):
        response = client.post(f"/hooks/{token}/invoices", json=INVOICE_EVENT)
        assert response.status_code == 404
        assert response.data == unknown.data
    assert trigger.status()["queued_triggers"] == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"invoice": {"id": 1}}', '"event"'),
        (b'{"event": "CREATE_NEW"}', "entity object"),
    ],
)
def test_malformed_payload_is_400_with_reason(
    client: FlaskClient, trigger: JobTrigger, body: bytes, message: str
) -> None:
    response = client.post(f"/hooks/{TOKEN}/invoices", data=body)
    assert response.status_code == 400
    assert message in response.get_json()["error"]
    assert trigger.status()["queued_triggers"] == 0


def test_body_over_the_limit_is_413(client: FlaskClient, trigger: JobTrigger) -> None:
    big = {"event": "UPDATE", "invoice": {"id": 1, "padding": "x" * 4096}}
    response = client.post(f"/hooks/{TOKEN}/invoices", json=big)
    assert response.status_code == 413
    assert trigger.status()["queued_triggers"] == 0


def test_types_the_job_does_not_sync_are_acknowledged_but_ignored(
    client: FlaskClient, trigger: JobTrigger
) -> None:
    response = client.post(f"/hooks/{TOKEN}/offers", json={"event": "X", "offer": {"id": 3}})
    assert response.status_code == 202
    assert response.get_json() == {"accepted": True, "triggered": False}
    assert trigger.status()["queued_triggers"] == 0


def test_only_post_is_accepted_on_the_hook(client: FlaskClient) -> None:
    assert client.get(f"/hooks/{TOKEN}/invoices").status_code == 405


def test_health_shows_queue_and_last_run(
    client: FlaskClient, trigger: JobTrigger, clock: Any
) -> None:
    client.post(f"/hooks/{TOKEN}/invoices", json=INVOICE_EVENT)
    client.post(f"/hooks/{TOKEN}/projects", json={"event": "UPDATE", "project": {"id": 2}})
    before = client.get("/health").get_json()
    assert before["status"] == "ok"
    assert before["tenant"] == "acme"
    assert before["queued"] is True
    assert before["queued_triggers"] == 2
    assert before["in_flight"] is False
    assert before["last_run"] is None

    clock.advance(10)
    assert trigger.run_due() is not None
    after = client.get("/health").get_json()
    assert after["queued"] is False
    assert after["last_run"]["triggers_coalesced"] == 2
    assert after["last_run"]["exit_code"] == 0
    assert TOKEN not in json.dumps(after)
