"""What a newcomer types from the README, run as they would: real processes, real ports."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from shared.settings import Settings
from tests.loopback import dev_server, free_port

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _clean_env(data: Path, **settings: str) -> dict[str, str]:
    """The caller's environment without Comptoir's settings nor PYTHONPATH (a newcomer's shell),
    with a store of its own."""
    aliases = {field.alias for field in Settings.model_fields.values()}
    env = {k: v for k, v in os.environ.items() if k not in aliases and k != "PYTHONPATH"}
    env.update(STORE_URL=f"sqlite:///{data}/dev.db", **settings)
    return env


def test_the_documented_functions_framework_command_serves_a_chat_turn(tmp_path: Path) -> None:
    env = _clean_env(tmp_path)
    seeded = subprocess.run(
        [sys.executable, "-m", "shared", "seed-demo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert seeded.returncode == 0, seeded.stderr
    port = free_port()
    # As the README writes it, from the repository root.
    command = [str(BIN / "functions-framework"), "--source=functions/chat.py", "--target=chat"]
    server = subprocess.Popen(
        [*command, f"--port={port}", "--host=127.0.0.1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/",
            data=json.dumps({"message": "Avez-vous des sandales en cuir ?"}).encode(),
            headers={"Content-Type": "application/json"},
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    status, answer = response.status, json.loads(response.read())
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    server.kill()
                    _, stderr = server.communicate(timeout=10)
                    raise AssertionError(stderr.decode(errors="replace")[-2000:]) from None
                time.sleep(0.1)
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert status == 200
    assert "Sandales en cuir" in answer["reply"]
    assert answer["products"][0]["id"] == "sandales-en-cuir"


def test_a_port_in_use_is_one_line_naming_port(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "shared", "serve"],
            cwd=ROOT,
            env=_clean_env(tmp_path, HOST="127.0.0.1", PORT=str(port)),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"error: port {port} is in use: set PORT")
    assert "stop the other server" in line


def test_make_dev_says_what_it_is_doing_before_each_long_step() -> None:
    # --dry-run --always-make: every command `make dev` runs on a fresh machine, none executed.
    done = subprocess.run(
        ["make", "--dry-run", "--always-make", "dev"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    long_steps = ("-m venv", "pip install", "npm ci", "web/build.mjs", "seed-demo")
    for step in long_steps:
        (index,) = [i for i, line in enumerate(lines) if step in line and "echo" not in line]
        assert lines[index - 1].startswith("echo "), (step, lines[index - 1])
    assert any("Installing Python packages (a few minutes" in line for line in lines)


def test_a_missing_llm_key_is_reported_when_the_server_starts(tmp_path: Path) -> None:
    stderr = tmp_path / "stderr.log"
    with dev_server(tmp_path, {"LLM_PROVIDER": "mistral"}, stderr=stderr):
        started = [json.loads(line) for line in stderr.read_text().splitlines()]
    # Before any request: the first lines the operator sees.
    assert started[0]["event"] == "llm_misconfigured"
    assert (started[0]["level"], started[0]["missing"]) == ("WARNING", "MISTRAL_API_KEY")
