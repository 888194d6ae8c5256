"""The packaged functions, unzipped from the ci package and run by serverless-offline on
loopback: what is deployed is what is tested (the code and serverless.yml's routes and
environment; the dependencies are the venv's, Python 3.11 on x86_64, not the layer's)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from typing import Any

from tests.deploy.conftest import OFFLINE_SECRETS, OfflineAPI
from tests.eventlib import load_event


def call(
    api: OfflineAPI,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    request = urllib.request.Request(
        api.url + path, data=body, method=method, headers=headers or {}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def log_tail(api: OfflineAPI) -> str:
    """The end of serverless-offline's output (the functions' logs and errors)."""
    return api.log.read_text(errors="replace")[-3000:]


def call_json(api: OfflineAPI, method: str, path: str, payload: Any = None) -> tuple[int, Any]:
    body = json.dumps(payload).encode() if payload is not None else None
    status, raw = call(api, method, path, body, {"Content-Type": "application/json"})
    return status, json.loads(raw)


def test_health(offline_api: OfflineAPI) -> None:
    started = time.perf_counter()
    status, body = call_json(offline_api, "GET", "/healthz")
    print(f"\nfirst call through serverless-offline: {time.perf_counter() - started:.2f} s")
    assert status == 200, log_tail(offline_api)
    assert body == {"status": "ok", "store": "sqlite", "llm": "offline"}


def test_a_chat_turn_and_its_history(offline_api: OfflineAPI) -> None:
    status, turn = call_json(
        offline_api, "POST", "/chat", {"message": "Avez-vous des sandales en cuir ?"}
    )
    assert status == 200, log_tail(offline_api)
    assert turn["reply"] and turn["session_id"]
    assert any("andale" in p["title"] for p in turn["products"])
    status, history = call_json(
        offline_api, "GET", f"/chat/history?session_id={turn['session_id']}"
    )
    assert status == 200, history
    assert [m["role"] for m in history["messages"]] == ["user", "assistant"]


def test_whatsapp_verification(offline_api: OfflineAPI) -> None:
    token = OFFLINE_SECRETS["WHATSAPP_VERIFY_TOKEN"]
    query = f"hub.mode=subscribe&hub.verify_token={token}&hub.challenge=1158201444"
    status, body = call(offline_api, "GET", f"/webhooks/whatsapp?{query}")
    assert (status, body) == (200, b"1158201444")
    wrong = "hub.mode=subscribe&hub.verify_token=guess&hub.challenge=1"
    status, _ = call(offline_api, "GET", f"/webhooks/whatsapp?{wrong}")
    assert status == 403


def test_a_signed_whatsapp_delivery(offline_api: OfflineAPI) -> None:
    body = json.dumps(load_event("whatsapp_text")).encode()
    secret = OFFLINE_SECRETS["WHATSAPP_APP_SECRET"].encode()
    signature = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": signature}
    status, answer = call(offline_api, "POST", "/webhooks/whatsapp", body, headers)
    assert status == 200, log_tail(offline_api)
    assert json.loads(answer) == {"ok": True}
    forged = {**headers, "X-Hub-Signature-256": "sha256=" + "0" * 64}
    status, _ = call(offline_api, "POST", "/webhooks/whatsapp", body, forged)
    assert status == 403


def test_telegram_refuses_a_wrong_secret(offline_api: OfflineAPI) -> None:
    body = json.dumps(load_event("telegram_message")).encode()
    headers = {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": "guess"}
    status, _ = call(offline_api, "POST", "/webhooks/telegram", body, headers)
    assert status == 401


def test_the_code_served_is_the_unzipped_package(offline_api: OfflineAPI) -> None:
    service = offline_api.service_dir
    assert (service / "functions" / "chat.py").is_file()
    assert not (service / "tests").exists() and not (service / "bench").exists()
    log = offline_api.log.read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]
