"""The Lambda layer of runtime dependencies: built for arm64 / CPython 3.12 without Docker,
from the same pins as requirements.txt, small enough for Lambda."""

from __future__ import annotations

import re
import zipfile
from typing import Any

from tests.deploy.conftest import ROOT

AWS_REQUIREMENTS = ROOT / "infra" / "aws" / "requirements-aws.txt"
LAYER = ROOT / "infra" / "aws" / ".build" / "layer.zip"
# Used only on Google Cloud: left out of the AWS layer.
GCP_ONLY = {"google-cloud-firestore", "functions-framework"}


def pins(text: str) -> dict[str, str]:
    found = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            name, _, version = line.partition("==")
            found[name.strip().lower()] = version.strip()
    return found


def test_same_pins_as_requirements_txt_without_the_google_cloud_only_packages() -> None:
    runtime = pins((ROOT / "requirements.txt").read_text())
    aws = pins(AWS_REQUIREMENTS.read_text())
    assert all(aws.values()), "every AWS requirement is pinned"
    assert aws == {k: v for k, v in runtime.items() if k not in GCP_ONLY}


def test_the_layer_holds_linux_arm64_cp312_binaries_only(layer_report: dict[str, Any]) -> None:
    assert layer_report["platform"] == "manylinux2014_aarch64"
    assert layer_report["python"] == "3.12"
    with zipfile.ZipFile(LAYER) as layer:
        names = layer.namelist()
        assert names and all(n.startswith("python/") for n in names)
        assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
        assert not [n for n in names if n.startswith("python/bin/")]
        binaries = [n for n in names if re.search(r"\.so(\.|$)", n)]
        assert binaries
        for name in binaries:
            header = layer.read(name)[:20]
            assert header[:4] == b"\x7fELF", name
            assert int.from_bytes(header[18:20], "little") == 0xB7, f"{name} is not AArch64"
            assert "x86_64" not in name and "cpython-311" not in name, name
        # The compiled dependencies the functions cannot run without.
        for package in ("pydantic_core", "jiter", "markupsafe"):
            assert any(n.startswith(f"python/{package}/") and ".so" in n for n in binaries)


def test_sizes(layer_report: dict[str, Any]) -> None:
    packages = layer_report["packages"]
    assert set(pins(AWS_REQUIREMENTS.read_text())) <= set(packages)
    assert not GCP_ONLY & set(packages) and "grpcio" not in packages
    # Lambda allows 250 MB unzipped for a function and its layers.
    assert layer_report["unzipped_bytes"] < 150 * 1024 * 1024
    biggest = ", ".join(f"{n} {s / 1_048_576:.1f}" for n, s in list(packages.items())[:6])
    print(
        f"\nlayer: {layer_report['unzipped_bytes'] / 1_048_576:.1f} MB unzipped, "
        f"{layer_report['zip_bytes'] / 1_048_576:.1f} MB zipped; largest (MB): {biggest}"
    )
