"""The blob port keeps a function's cold start light: its modules import no SDK; a backend
loads its own when it is built, and google-auth only when a token is first needed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SDKS = ["boto3", "botocore", "google.auth", "httpx", "requests"]
IMPORT_ALL = (
    "import shared.blob, shared.blob.s3, shared.blob.gcs, shared.blob.publish, shared.blob.cli"
)


def _loaded_after(program: str) -> list[str]:
    check = (
        f"import sys, json\n{program}\nprint(json.dumps([m for m in {SDKS!r} if m in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, check=True
    )
    loaded: list[str] = json.loads(out.stdout)
    return loaded


@pytest.mark.parametrize(
    ("program", "expected"),
    [
        (IMPORT_ALL, []),
        (
            f"{IMPORT_ALL}\nimport tempfile\nfrom shared.blob import open_blob\n"
            "with open_blob(tempfile.mkdtemp()) as blob:\n"
            "    blob.put('a', b'x', content_type='text/plain')\n"
            "    blob.get('a')",
            [],
        ),
        (
            "from shared.blob.gcs import GCSBlob\nGCSBlob('b-1', token_provider=lambda: 't')",
            ["httpx"],
        ),
    ],
    ids=["import", "local-backend", "gcs-with-token-provider"],
)
def test_sdks_load_only_when_needed(program: str, expected: list[str]) -> None:
    assert _loaded_after(program) == expected
