"""Cold start per function: a fresh process imports the function and serves its first request.

Compared, in the same run, with a baseline that first imports every provider SDK eagerly (what a
function pays when the library imports boto3, google-cloud-firestore, openai and google-genai at
the top). Embedded defaults: SQLite store seeded with the demo shop, offline responder.

    .venv/bin/python bench/cold_start.py [--runs 7]

Prints a Markdown table for bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: the list of functions

from functions import FUNCTIONS  # noqa: E402 - needs the line above

EAGER_SDKS = "import boto3, google.cloud.firestore, openai, google.genai"


# One first event per function of the list (a function without one stops the bench), as its
# trigger would deliver it: API Gateway (HTTP API v2)
# for the HTTP functions, an SQS batch for the worker. Each must answer as noted.
def _http(method: str, path: str, body: str = "", **headers: str) -> dict[str, object]:
    return {
        "version": "2.0",
        "rawPath": path.split("?")[0],
        "rawQueryString": path.partition("?")[2],
        "headers": {"content-type": "application/json", **headers},
        "requestContext": {"http": {"method": method, "path": path, "sourceIp": "127.0.0.1"}},
        "body": body,
        "isBase64Encoded": False,
    }


FIRST_EVENTS: dict[str, dict[str, object]] = {
    "chat": _http("POST", "/chat", json.dumps({"message": "Avez-vous des sandales en cuir ?"})),
    "health": _http("GET", "/healthz"),
    "webhook_whatsapp": _http(
        "GET",
        "/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=bench-token&hub.challenge=42",
    ),
    # An update type the bot ignores: authenticated and acknowledged, nothing queued.
    "webhook_telegram": _http(
        "POST",
        "/webhooks/telegram",
        json.dumps({"update_id": 1, "poll": {"id": "1", "question": "?", "options": []}}),
        **{"x-telegram-bot-api-secret-token": "bench-secret"},
    ),
    "worker": {"Records": []},
    # EventBridge Scheduler's direct invocation: a tick with nothing due.
    "tasks": {"task": "tick"},
    # A provider's post without its signature: refused before anything is parsed (a signed
    # event needs a timestamp of the moment, which a recorded event cannot have).
    "payments": _http("POST", "/webhooks/payments/test", json.dumps({"id": "evt_bench"})),
    "webhook_messenger": _http(
        "GET",
        "/webhooks/messenger?hub.mode=subscribe&hub.verify_token=bench-token&hub.challenge=42",
    ),
    # Posts without their signatures: refused before anything is parsed, as for the payments.
    "webhook_nextcloud": _http("POST", "/webhooks/nextcloud", json.dumps({"type": "Create"})),
    "webhook_email": _http("POST", "/webhooks/email/inbound", json.dumps({"mime": ""})),
    # A console that is not signed in yet: its first call is "who am I".
    "admin": _http("GET", "/admin/api/me"),
    # An agent's first call, with a key the shop never made.
    "mcp_server": _http(
        "POST",
        "/mcp",
        json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
        authorization="Bearer ck_bench",
    ),
}
# The first request's expected status, where it is not 200.
FIRST_STATUS = {
    "payments": 401, "admin": 401, "mcp_server": 401, "webhook_nextcloud": 401,
    "webhook_email": 401,
}  # fmt: skip
PROGRAM = """
import time, json
t0 = time.perf_counter()
{eager}
import functions.{module} as fn
t1 = time.perf_counter()
out = fn.lambda_handler(json.loads({event!r}), None)
t2 = time.perf_counter()
assert out.get("statusCode", 200) == {status}, out
print(json.dumps({{"import": t1 - t0, "total": t2 - t0}}))
"""


def run_once(module: str, eager: bool, env: dict[str, str]) -> dict[str, float]:
    program = PROGRAM.format(
        eager=EAGER_SDKS if eager else "",
        module=module,
        event=json.dumps(FIRST_EVENTS[module]),
        status=FIRST_STATUS.get(module, 200),
    )
    out = subprocess.run(
        [sys.executable, "-c", program],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "STORE_URL": f"sqlite:///{tmp}/bench.db",
            "DEFAULT_SHOP": "demo",
            "LOG_LEVEL": "WARNING",
            "WHATSAPP_VERIFY_TOKEN": "bench-token",
            "MESSENGER_VERIFY_TOKEN": "bench-token",
            "NEXTCLOUD_BOT_SECRET": "bench-nextcloud-bot-secret-0123456789abcdef",
            "EMAIL_INBOUND_SECRET": "bench-email-secret",
            "TELEGRAM_WEBHOOK_SECRET": "bench-secret",
            "ADMIN_SESSION_SECRET": "bench-admin-session-secret-0123456789abcdef",
            "PYTHONDONTWRITEBYTECODE": "0",
        }
        subprocess.run(
            [sys.executable, "-m", "shared", "seed-demo"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
        print(
            f"Cold start, median of {args.runs} fresh processes ({time.strftime('%Y-%m-%d')}, "
            f"Python {sys.version.split()[0]}):\n"
        )
        print(
            "| function | import (ms) | import + first request (ms) | eager SDKs (ms) | speed-up |"
        )
        print("| --- | ---: | ---: | ---: | ---: |")
        for module in (fn.name for fn in FUNCTIONS):
            ours, base = [], []
            for _ in range(args.runs):  # interleaved, so machine noise hits both alike
                ours.append(run_once(module, False, env))
                base.append(run_once(module, True, env))
            imp = statistics.median(r["import"] for r in ours) * 1000
            total = statistics.median(r["total"] for r in ours) * 1000
            baseline = statistics.median(r["total"] for r in base) * 1000
            print(
                f"| {module} | {imp:.0f} | {total:.0f} | {baseline:.0f} | {baseline / total:.1f}x |"
            )


if __name__ == "__main__":
    main()
