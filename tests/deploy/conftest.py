"""Fixtures of the deploy checks: the Lambda layer, `osls package --stage ci`, and the packaged
functions served by serverless-offline on loopback.

Nothing here reaches AWS: osls runs with dummy credentials, every AWS endpoint points to a local
stand-in (``CloudFormationStub``), and the one call packaging makes (DescribeStacks, to reuse an
already uploaded layer) gets the answer a first deploy gets: no such stack. A missing tool fails
the test with what to install; nothing is skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from tests.loopback import free_port

ROOT = Path(__file__).resolve().parents[2]
NODE_BIN = ROOT / "node_modules" / ".bin"
VENV_BIN = Path(sys.executable).parent  # the interpreter running the tests: the project's venv
CI_STAGE = "ci"
# The one route that decides: WhatsApp's recorded text message is for this phone number id.
WHATSAPP_PHONE_NUMBER_ID = "106540352242922"
OFFLINE_SECRETS = {
    "WHATSAPP_VERIFY_TOKEN": "offline-verify-token",
    "WHATSAPP_APP_SECRET": "offline-app-secret",
    "TELEGRAM_WEBHOOK_SECRET": "offline-telegram-secret",
}


def require(path: Path, what: str) -> Path:
    if not path.exists():
        pytest.fail(f"{what} is missing ({path}): run `make setup` (npm ci, pip install)")
    return path


class CloudFormationStub:
    """A loopback stand-in for every AWS endpoint osls might call while packaging."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                action = (form.get("Action") or [self.headers.get("X-Amz-Target", "?")])[0]
                stub.calls.append(action)
                message = (
                    "Stack with id comptoir-ci does not exist"
                    if action == "DescribeStacks"
                    else f"{action} is not available offline"
                )
                body = (
                    '<ErrorResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/">'
                    "<Error><Type>Sender</Type><Code>ValidationError</Code>"
                    f"<Message>{message}</Message></Error><RequestId>stub</RequestId>"
                    "</ErrorResponse>"
                ).encode()
                self.send_response(400)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Packaged:
    directory: Path
    template: dict[str, Any]
    seconds: float
    aws_calls: list[str]
    zips: dict[str, Path] = field(default_factory=dict)

    def resources(self, kind: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.template["Resources"].items() if v["Type"] == kind}

    def functions(self) -> dict[str, dict[str, Any]]:
        """Lambda functions by their module (``functions/<module>.lambda_handler``)."""
        found = {}
        for logical_id, resource in self.resources("AWS::Lambda::Function").items():
            handler = resource["Properties"]["Handler"]
            module = handler.removeprefix("functions/").rsplit(".", 1)[0]
            found[module] = {**resource, "LogicalId": logical_id}
        return found


def osls_env(stub_url: str) -> dict[str, str]:
    """Dummy credentials, no AWS configuration read, every AWS endpoint on loopback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SLS_"))}
    env.pop("PYTHONPATH", None)
    env.update(
        {
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', os.defpath)}",
            "AWS_ACCESS_KEY_ID": "dummy",
            "AWS_SECRET_ACCESS_KEY": "dummy",
            "AWS_CONFIG_FILE": "/nonexistent/aws-config",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_ENDPOINT_URL": stub_url,
            "AWS_ENDPOINT_URL_CLOUDFORMATION": stub_url,
            "SLS_AWS_REQUEST_MAX_RETRIES": "0",
            "SLS_TELEMETRY_DISABLED": "1",
        }
    )
    return env


@pytest.fixture(scope="session")
def cloudformation_stub() -> Iterator[CloudFormationStub]:
    stub = CloudFormationStub()
    yield stub
    stub.close()


@pytest.fixture(scope="session")
def layer_report() -> dict[str, Any]:
    """infra/aws/build_layer.py's report (it rebuilds only when requirements-aws.lock changed;
    the first build downloads the aarch64 wheels from PyPI, about 15 s)."""
    script = ROOT / "infra" / "aws" / "build_layer.py"
    result = subprocess.run(
        [sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    if result.returncode != 0:
        pytest.fail(f"building the Lambda layer failed:\n{result.stdout}\n{result.stderr}")
    report: dict[str, Any] = json.loads(
        (ROOT / "infra" / "aws" / ".build" / "layer-report.json").read_text()
    )
    return report


def run_osls(
    args: list[str], env: dict[str, str], cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    osls = require(NODE_BIN / "osls", "osls (npm devDependency)")
    require(Path(shutil.which("node", path=env["PATH"]) or "/nonexistent/node"), "node")
    return subprocess.run(
        [str(osls), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="session")
def packaged(
    layer_report: dict[str, Any],
    cloudformation_stub: CloudFormationStub,
    tmp_path_factory: pytest.TempPathFactory,
) -> Packaged:
    """`osls package --stage ci` into a temporary folder (about 10 s)."""
    directory = tmp_path_factory.mktemp("package") / CI_STAGE
    started = time.perf_counter()
    result = run_osls(
        ["package", "--stage", CI_STAGE, "--package", str(directory)],
        osls_env(cloudformation_stub.url),
    )
    seconds = time.perf_counter() - started
    template_path = directory / "cloudformation-template-update-stack.json"
    if result.returncode != 0 or not template_path.is_file():
        pytest.fail(f"osls package failed:\n{result.stdout}\n{result.stderr}")
    zips = {p.stem: p for p in directory.glob("*.zip")}
    return Packaged(
        directory,
        json.loads(template_path.read_text()),
        seconds,
        list(cloudformation_stub.calls),
        zips,
    )


@dataclass
class OfflineAPI:
    url: str
    log: Path
    service_dir: Path
    store_url: str


@pytest.fixture(scope="session")
def offline_api(
    packaged: Packaged, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OfflineAPI]:
    """serverless-offline on loopback, serving the functions unzipped from the ci package (the
    code that would be uploaded), with the venv's python and a seeded SQLite store."""
    require(ROOT / "node_modules" / "serverless-offline", "serverless-offline (npm devDependency)")
    base = tmp_path_factory.mktemp("offline")
    service = base / "service"
    service.mkdir()
    for module, archive in packaged.zips.items():
        if module != "layer":
            with zipfile.ZipFile(archive) as zipped:
                zipped.extractall(service)
    (service / "infra" / "aws").mkdir(parents=True)
    shutil.copy2(ROOT / "serverless.yml", service)
    shutil.copy2(ROOT / "infra" / "aws" / "variables.js", service / "infra" / "aws")
    shutil.copy2(ROOT / "infra" / "secret-names.json", service / "infra")
    (service / "node_modules").symlink_to(ROOT / "node_modules")

    store_url = f"sqlite:///{base / 'offline.db'}"
    env = osls_env("http://127.0.0.1:9")  # nothing in the offline run may call AWS
    env.update(
        {
            # serverless-offline runs `python3` from PATH, after $VIRTUAL_ENV/bin: the venv's.
            "VIRTUAL_ENV": str(VENV_BIN.parent),
            "STORE_URL": store_url,
            "PUBLIC_BASE_URL": "http://127.0.0.1:3000",
            "LLM_PROVIDER": "offline",
            # Channel APIs on a closed loopback port: a stray send fails at once, offline.
            "WHATSAPP_API_BASE": "http://127.0.0.1:9",
            "TELEGRAM_API_BASE": "http://127.0.0.1:9",
            **OFFLINE_SECRETS,
        }
    )
    python3 = shutil.which("python3", path=f"{VENV_BIN}{os.pathsep}{env['PATH']}")
    assert python3 is not None and Path(python3).parent == VENV_BIN
    seed = subprocess.run(
        [sys.executable, "-m", "shared", "seed-demo"],
        cwd=base,  # not the repo: no developer .env is read
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    if seed.returncode != 0:
        pytest.fail(f"seed-demo failed:\n{seed.stdout}\n{seed.stderr}")

    http_port, lambda_port = free_port(), free_port()
    log = base / "offline.log"
    osls = require(NODE_BIN / "osls", "osls (npm devDependency)")
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(osls), "offline", "start", "--stage", "offline", "--host", "127.0.0.1",
             "--httpPort", str(http_port), "--lambdaPort", str(lambda_port),
             "--noPrependStageInUrl", f"--param=whatsappPhoneNumberId={WHATSAPP_PHONE_NUMBER_ID}"],
            cwd=service, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped with its python children
        )  # fmt: skip
    try:
        _wait_for_port(http_port, process, log)
        yield OfflineAPI(f"http://127.0.0.1:{http_port}", log, service, store_url)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"serverless-offline exited:\n{log.read_text(errors='replace')[-3000:]}")
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    pytest.fail(f"serverless-offline did not listen:\n{log.read_text(errors='replace')[-3000:]}")
