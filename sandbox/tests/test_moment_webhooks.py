"""The Moment sandbox sends webhooks as Moment does: per type, plain POSTs, off the request path.

A tiny local HTTP receiver (a real server on a free port) records what arrives; the sandbox runs as
a real process.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from sandbox.launcher import SandboxProcess

API_AUTH = ("apikey", "sandbox-key")


class Receiver:
    """Records every POST (path and JSON body); can be told to hold its answers or fail them."""

    def __init__(self) -> None:
        self.received: list[tuple[str, Any]] = []
        # While cleared, every delivery waits in the handler (a receiver that is slow to answer).
        self.gate = threading.Event()
        self.gate.set()
        self.status = 200
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.gate.wait(timeout=30)
                with receiver._lock:
                    receiver.received.append((self.path, json.loads(body)))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[tuple[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.02)
        raise AssertionError(f"expected {count} webhook(s), got {self.received}")


@pytest.fixture
def moment(tmp_path: Path) -> Iterator[SandboxProcess]:
    with SandboxProcess("moment", tmp_path / "moment.db", seed=1) as proc:
        yield proc


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hooks = Receiver()
    yield hooks
    hooks.server.shutdown()
    hooks.server.server_close()


def subscribe(moment: SandboxProcess, receiver: Receiver, *types: str) -> None:
    for webhook_type in types:
        moment.admin(
            "POST",
            "webhooks",
            {"type": webhook_type, "url": f"{receiver.url}/hooks/x/{webhook_type}"},
        )


def api(moment: SandboxProcess, method: str, path: str, body: Any = None) -> Any:
    url = f"{moment.url}/api/1.0/companies/demo/{path}"
    response = requests.request(method, url, json=body, auth=API_AUTH, timeout=10)
    assert response.status_code in (200, 201), response.text
    return response.json()


def deliveries(moment: SandboxProcess, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        sent: list[dict[str, Any]] = moment.admin("GET", "webhooks/deliveries")["deliveries"]
        if len(sent) >= count:
            return sent
        time.sleep(0.05)
    raise AssertionError(f"expected {count} deliveries")


def test_subscriptions_are_per_type_replaced_deleted_and_survive_restart_and_reseed(
    moment: SandboxProcess,
) -> None:
    assert moment.admin("GET", "webhooks") == {"webhooks": []}
    moment.admin("POST", "webhooks", {"type": "customers", "url": "http://127.0.0.1:9/a"})
    moment.admin("POST", "webhooks", {"type": "invoices", "url": "http://127.0.0.1:9/b"})
    # Moment has one integration per type: registering the type again replaces its URL.
    moment.admin("POST", "webhooks", {"type": "customers", "url": "http://127.0.0.1:9/c"})
    expected = [
        {"type": "customers", "url": "http://127.0.0.1:9/c"},
        {"type": "invoices", "url": "http://127.0.0.1:9/b"},
    ]
    assert moment.admin("GET", "webhooks")["webhooks"] == expected
    moment.admin("POST", "seed", {"seed": 2})
    moment.restart()
    assert moment.admin("GET", "webhooks")["webhooks"] == expected
    moment.admin("DELETE", "webhooks/invoices")
    assert moment.admin("GET", "webhooks")["webhooks"] == expected[:1]
    # Another company has its own (none).
    moment.admin("POST", "companies", {"code": "acme", "apiKey": "acme-key"})
    assert moment.admin("GET", "webhooks?company=acme") == {"webhooks": []}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"type": "offers", "url": "http://127.0.0.1:9/"}, "Unknown webhook type 'offers'"),
        ({"type": "customers", "url": "ftp://example.com/"}, "http(s) URL"),
        ({"type": "customers"}, '"type" and "url"'),
    ],
)
def test_bad_subscription_is_refused_with_what_is_wrong(
    moment: SandboxProcess, body: dict[str, Any], message: str
) -> None:
    with pytest.raises(urllib.error.HTTPError) as refused:
        moment.admin("POST", "webhooks", body)
    assert refused.value.code == 400
    assert message in json.loads(refused.value.read())["message"]


def test_customer_and_project_changes_send_inferred_payloads(
    moment: SandboxProcess, receiver: Receiver
) -> None:
    subscribe(moment, receiver, "customers", "projects")
    edited = moment.admin("PATCH", "customers/1005", {"email": "ny@adress.se"})
    created = api(moment, "POST", "customers", {"name": "Webbkrok AB", "customerNumber": "9100"})
    project = api(
        moment, "POST", "projects", {"name": "Nytt", "customer": {"customerNumber": "9100"}}
    )
    got = receiver.wait_for(3)
    assert got == [
        (
            "/hooks/x/customers",
            {"event": "UPDATE", "customer": {"id": edited["id"], "customerNumber": "1005"}},
        ),
        (
            "/hooks/x/customers",
            {"event": "CREATE_NEW", "customer": {"id": created["id"], "customerNumber": "9100"}},
        ),
        (
            "/hooks/x/projects",
            {
                "event": "CREATE_NEW",
                "project": {"id": project["id"], "projectNumber": project["projectNumber"]},
            },
        ),
    ]


def test_invoice_webhook_is_the_documented_payload_on_finalise_only(
    moment: SandboxProcess, receiver: Receiver
) -> None:
    subscribe(moment, receiver, "invoices")
    line = {"quantity": 2, "unitPrice": 950, "vatRate": 25, "accountNumber": "3001"}
    draft = api(
        moment,
        "POST",
        "invoices",
        {
            "customer": {"customerNumber": "1002"},
            "project": {"projectNumber": "5002"},
            "invoiceLines": [line],
        },
    )
    api(moment, "PATCH", f"invoices/{draft['id']}", {"invoiceDate": "2026-03-01"})
    final = api(moment, "POST", f"invoices/{draft['id']}/finalize")
    ((path, payload),) = receiver.wait_for(1)
    assert path == "/hooks/x/invoices"
    assert payload == {
        "event": "CREATE_NEW",
        "invoice": {
            "id": draft["id"],
            "invoiceNumber": final["invoiceNumber"],
            "customer": {"id": final["customer"]["id"], "customerNumber": "1002"},
            "project": {"id": final["project"]["id"], "projectNumber": "5002"},
        },
    }
    # Exactly one: drafts and their edits send nothing.
    assert isinstance(payload["invoice"]["invoiceNumber"], int)
    assert len(deliveries(moment, 1)) == 1


def test_slow_receiver_never_delays_the_api_and_webhooks_keep_their_order(
    moment: SandboxProcess, receiver: Receiver
) -> None:
    subscribe(moment, receiver, "customers")
    receiver.gate.clear()  # the receiver holds its answer to every delivery
    for number in ("1001", "1002", "1003"):
        moment.admin("PATCH", f"customers/{number}", {"city": "Luleå"})
    # Three API answers while the first delivery is still unanswered: nothing was received yet.
    assert receiver.received == []
    receiver.gate.set()
    got = receiver.wait_for(3)
    assert [body["customer"]["customerNumber"] for _, body in got] == ["1001", "1002", "1003"]


def test_unreachable_or_failing_receiver_is_tried_twice_then_given_up(
    moment: SandboxProcess, receiver: Receiver
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    moment.admin(
        "POST", "webhooks", {"type": "customers", "url": f"http://127.0.0.1:{closed_port}/h"}
    )
    moment.admin("PATCH", "customers/1001", {"city": "Kiruna"})
    (first,) = deliveries(moment, 1)
    assert first["status"] is None
    assert first["attempts"] == 2
    assert "ConnectionRefused" in first["error"] or "URLError" in first["error"]

    receiver.status = 503
    subscribe(moment, receiver, "customers")
    moment.admin("PATCH", "customers/1001", {"city": "Gällivare"})
    second = deliveries(moment, 2)[1]
    assert (second["status"], second["attempts"], second["error"]) == (503, 2, "HTTP 503")
    assert len(receiver.wait_for(2)) == 2  # two tries, no retry loop beyond them
    # The API itself is unaffected.
    assert api(moment, "GET", "customers?customerNumber=1001")["content"][0]["city"] == "Gällivare"
