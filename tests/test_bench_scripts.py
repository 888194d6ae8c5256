"""Every bench script still imports against the library as it is now: a refactor that renames
what a bench uses fails here, not weeks later when someone runs ``make bench``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
SCRIPTS = sorted(p for p in BENCH.glob("*.py") if not p.name.startswith("_"))


def test_the_bench_folder_has_its_scripts() -> None:
    assert {"cold_start.py", "prompt_tokens.py", "turn_overhead.py"} <= {p.name for p in SCRIPTS}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_a_bench_script_imports(script: Path) -> None:
    # Imported as a module (its main() does not run), from bench/ as the scripts expect.
    code = (
        "import importlib.util, sys\n"
        f"sys.path[:0] = [{str(BENCH)!r}, {str(BENCH.parent)!r}]\n"
        f"spec = importlib.util.spec_from_file_location('bench_script', {str(script)!r})\n"
        "module = sys.modules['bench_script'] = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "assert callable(module.main)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_campaigns_bench_runs_small_and_finds_every_message_once() -> None:
    # 200 customers: a dry run, a paced run, and a run killed half-way then resumed in
    # subprocesses; the script exits non-zero if a number got two messages, an opted-out one got
    # any, or the send records do not add up to the audience.
    result = subprocess.run(
        [sys.executable, str(BENCH / "campaigns.py"), "--customers", "200", "--rate", "400"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "duplicates: 0 (must be 0)" in result.stdout
    assert "to opted-out numbers: 0 (must be 0)" in result.stdout
    assert "(must be 198)" in result.stdout  # 2 of the 200 opted out


def test_the_import_throughput_bench_runs_small_and_reads_back_what_it_wrote() -> None:
    # 120 products on every store: one by one and through put_many (a DynamoDB transaction
    # holds 100); the script exits non-zero if a product read back differs.
    result = subprocess.run(
        [sys.executable, str(BENCH / "import_throughput.py"), "--products", "120"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ") and "x |" in line]
    assert [row.split(" |")[0] for row in rows] == [
        "| SQLite (file, WAL)",
        "| DynamoDB (moto server, loopback)",
        "| Firestore (Google's emulator, loopback)",
    ]


def test_the_cold_start_bench_has_a_first_event_for_every_function() -> None:
    code = (
        "import importlib.util, sys\n"
        f"sys.path[:0] = [{str(BENCH)!r}, {str(BENCH.parent)!r}]\n"
        f"spec = importlib.util.spec_from_file_location('cold', {str(BENCH / 'cold_start.py')!r})\n"
        "module = sys.modules['cold'] = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "from functions import FUNCTIONS\n"
        "missing = {f.name for f in FUNCTIONS} - set(module.FIRST_EVENTS)\n"
        "assert not missing, missing\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
