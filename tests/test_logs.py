"""Logs are JSON lines with the request's facts and never customer data or secrets."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

from shared import log
from shared.app import App, use_app
from tests.fixtures.app import Client, make_settings, post_json
from tests.llm.fakes import ScriptedLLM

PHONE = "+221 77 123 45 67"
SECRET = "sk-live-THISISASECRET0123456789"
TEXT = "Je m'appelle Aminata Diop, livrez à Sacré-Coeur 3 villa 12"


def test_requests_are_logged_as_json_without_customer_data(
    client: Client, app: App, logs: io.StringIO
) -> None:
    first = post_json(client, "/chat", {"message": f"{TEXT} {PHONE} {SECRET}"})
    sid = first.json()["session_id"]
    post_json(client, "/chat", {"message": PHONE, "session_id": sid})
    client.request("GET", "/chat/history", query={"session_id": sid, "token": SECRET})
    client.request("POST", f"/chat/{PHONE}", body=SECRET.encode())
    client.request(
        "POST",
        "/chat",
        headers={"content-type": "application/json"},
        body=b"{bad " + PHONE.encode(),
    )
    lines = [json.loads(line) for line in logs.getvalue().splitlines()]
    assert len(lines) == 5
    first_line = lines[0]
    assert first_line["event"] == "request"
    assert first_line["function"] == "chat"
    assert first_line["shop"] == "teranga"
    assert first_line["status"] == 200
    assert first_line["route"] == "/chat"
    assert isinstance(first_line["latency_ms"], float)
    assert first_line["request_id"]
    assert [line["status"] for line in lines] == [200, 200, 200, 404, 400]
    text = logs.getvalue()
    for forbidden in (PHONE, PHONE.replace(" ", ""), "77 123", SECRET, "Aminata", "Sacré", sid):
        assert forbidden not in text


class BrokenLLM(ScriptedLLM):
    """A provider with a bug: it raises something the library does not expect."""

    def stream(self, request):  # type: ignore[no-untyped-def]
        raise ValueError(f"cannot parse {request.messages[-1].text}")


def test_unexpected_errors_log_the_type_not_the_message(
    client: Client, app: App, logs: io.StringIO
) -> None:
    app.llm_override = BrokenLLM()
    result = post_json(client, "/chat", {"message": f"Bonjour {PHONE}"})
    assert result.status == 500
    assert result.json()["error"]["code"] == "internal"
    text = logs.getvalue()
    assert '"error_type":"ValueError"' in text
    assert "77 123" not in text


def test_an_unreadable_store_is_503_and_healthz_says_so(
    client: Client, app: App, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.db"
    broken.write_bytes(b"this is not an SQLite database" * 100)
    use_app(App(make_settings(tmp_path, STORE_URL=f"sqlite:///{broken}")))
    health = client.request("GET", "/healthz")
    assert health.status == 503
    assert health.json() == {
        "status": "unavailable",
        "store": "sqlite",
        "llm": "offline",
        "reason": "store_unreachable",
    }
    chat = post_json(client, "/chat", {"message": "Bonjour"})
    assert chat.status == 503
    assert chat.json()["error"] == {
        "code": "store_unavailable",
        "message": "the store is unavailable, try again",
    }


def test_log_configure_is_idempotent() -> None:
    log.configure("INFO")
    log.configure("INFO")
    handlers = [h for h in logging.getLogger("comptoir").handlers if getattr(h, "_comptoir", False)]
    assert len(handlers) == 1


def test_an_unexpected_error_mid_stream_ends_with_an_error_event(
    client: Client, app: App, logs: io.StringIO
) -> None:
    app.llm_override = BrokenLLM()
    result = client.request(
        "POST",
        "/chat",
        headers={"content-type": "application/json", "accept": "text/event-stream"},
        body=json.dumps({"message": f"Bonjour {PHONE}"}).encode(),
    )
    assert result.status == 200  # the stream had started
    assert result.body.decode().endswith(
        'event: error\ndata: {"error":{"code":"internal","message":"something went wrong"}}\n\n'
    )
    assert '"error_type":"ValueError"' in logs.getvalue()
    assert "77 123" not in logs.getvalue()
