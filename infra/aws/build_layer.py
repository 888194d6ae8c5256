"""Build the Lambda layer of runtime dependencies for python3.12 on arm64, without Docker.

    python infra/aws/build_layer.py            # -> infra/aws/.build/layer.zip (+ layer-report.json)
    python infra/aws/build_layer.py --check    # fail unless the built layer is up to date

pip installs ``requirements-aws.lock`` (``make lock``: requirements-aws.txt resolved for Lambda's
platform, every transitive dependency pinned with the hashes of all its release files) as the
wheels for ``manylinux2014_aarch64``, CPython 3.12, into ``python/`` (where Lambda looks in a
layer): a wheel whose hash is not in the lock, a dependency the lock does not name and any
source distribution are refused. A package without such a wheel would need a compiler for the
target, which is what Docker would have been for. Every compiled extension is then checked to
be an AArch64 ELF built for cp312 (or the stable ABI), and the zip is written with fixed
timestamps and order, so the same lock gives the same bytes and osls publishes a new layer
version only when they change.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
REQUIREMENTS = HERE / "requirements-aws.lock"
BUILD = HERE / ".build"
PLATFORM = "manylinux2014_aarch64"
PYTHON_VERSION = "3.12"
# Lambda's limit for a function and all its layers, unzipped.
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024
_ELF_MACHINE_AARCH64 = 0xB7
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
# Bump when the build itself changes, so an old layer.zip is not taken as up to date.
_BUILD_VERSION = "2"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requirements", type=Path, default=REQUIREMENTS)
    parser.add_argument("--out", type=Path, default=BUILD)
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    parser.add_argument("--check", action="store_true", help="only check that it is up to date")
    args = parser.parse_args(argv)

    out: Path = args.out
    stamp = _stamp(args.requirements)
    zip_path, report_path = out / "layer.zip", out / "layer-report.json"
    current = _read_json(report_path).get("stamp") if zip_path.is_file() else None
    if args.check:
        if current != stamp:
            print(f"{zip_path} is missing or stale: run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    if current == stamp and not args.force:
        print(f"layer up to date: {zip_path.relative_to(ROOT)}")
        _print_report(_read_json(report_path))
        return 0

    staging = out / "layer"
    shutil.rmtree(staging, ignore_errors=True)
    site = staging / "python"
    _pip_install(args.requirements, site)
    _prune(site)
    _check_binaries(site)
    unzipped = _tree_size(staging)
    if unzipped > LAMBDA_UNZIPPED_LIMIT * 0.8:  # the functions' own code needs room too
        print("error: the layer uses over 80% of Lambda's 250 MB unzipped limit", file=sys.stderr)
        return 1
    _write_zip(staging, zip_path)
    report: dict[str, object] = {
        "stamp": stamp,
        "platform": PLATFORM,
        "python": PYTHON_VERSION,
        "packages": _sizes_by_distribution(site),
        "unzipped_bytes": unzipped,
        "zip_bytes": zip_path.stat().st_size,
    }
    report_path.write_text(json.dumps(report, indent=2) + "\n")
    _print_report(report)
    return 0


def _stamp(requirements: Path) -> str:
    digest = hashlib.sha256()
    for part in (_BUILD_VERSION, PLATFORM, PYTHON_VERSION, requirements.read_text()):
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()


def _pip_install(requirements: Path, target: Path) -> None:
    command = [
        sys.executable, "-m", "pip", "install",
        "--quiet", "--disable-pip-version-check", "--no-input",
        "--platform", PLATFORM,
        "--implementation", "cp",
        "--python-version", PYTHON_VERSION,
        "--only-binary=:all:",  # wheels only: no compiler for aarch64 here, and none wanted
        "--require-hashes",  # the lock's versions and files, nothing else
        "--no-deps",  # the lock already lists every dependency, resolved for this platform
        "--no-compile",  # .pyc from this interpreter would be for the wrong Python
        "--target", str(target),
        "--requirement", str(requirements),
    ]  # fmt: skip
    print("$ " + " ".join(command[2:]), flush=True)
    result = subprocess.run(command, check=False, capture_output=True, text=True)  # noqa: S603
    if result.returncode != 0:
        # pip names the package that has no wheel for the platform.
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"pip could not install {requirements.name} for {PLATFORM}")


def _prune(site: Path) -> None:
    """Drop what cannot run on Lambda or is never read there."""
    shutil.rmtree(site / "bin", ignore_errors=True)  # console scripts with this machine's shebang
    for cache in list(site.rglob("__pycache__")):
        shutil.rmtree(cache, ignore_errors=True)


def _check_binaries(site: Path) -> None:
    """Every compiled extension must be an AArch64 ELF for CPython 3.12 or the stable ABI."""
    tag = f"cpython-{PYTHON_VERSION.replace('.', '')}-aarch64-linux-gnu"
    wrong = []
    for path in sorted(site.rglob("*.so*")):
        if not path.is_file():
            continue
        header = path.read_bytes()[:20]
        is_elf = header[:4] == b"\x7fELF"
        machine = int.from_bytes(header[18:20], "little") if is_elf else None
        abi_ok = ".abi3." in path.name or tag in path.name or ".cpython-" not in path.name
        if machine != _ELF_MACHINE_AARCH64 or not abi_ok:
            wrong.append(str(path.relative_to(site)))
    if wrong:
        raise SystemExit("not built for Lambda (aarch64, cp312): " + ", ".join(wrong))


def _sizes_by_distribution(site: Path) -> dict[str, int]:
    """Bytes on disk per installed distribution, from each one's RECORD."""
    sizes: dict[str, int] = {}
    for record in sorted(site.glob("*.dist-info/RECORD")):
        name = record.parent.name.split("-")[0].lower().replace("_", "-")
        total = 0
        for line in record.read_text().splitlines():
            path = site / line.split(",")[0]
            if path.is_file():
                total += path.stat().st_size
        sizes[name] = total
    return dict(sorted(sizes.items(), key=lambda item: -item[1]))


def _tree_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _write_zip(folder: Path, zip_path: Path) -> None:
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    partial = zip_path.with_suffix(".zip.partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(path.relative_to(folder).as_posix(), _ZIP_DATE)
            info.external_attr = 0o644 << 16  # readable by Lambda's sandbox user
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    partial.replace(zip_path)


def _read_json(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _print_report(report: dict[str, object]) -> None:
    packages = report.get("packages")
    if isinstance(packages, dict):
        for name, size in packages.items():
            print(f"  {name:<28} {_mb(int(size)):>9}")
    print(
        f"layer: {_mb(int(str(report.get('unzipped_bytes', 0))))} unzipped, "
        f"{_mb(int(str(report.get('zip_bytes', 0))))} zipped ({PLATFORM}, cp{PYTHON_VERSION})"
    )


def _mb(size: int) -> str:
    return f"{size / 1_048_576:.1f} MB"


if __name__ == "__main__":
    raise SystemExit(main())
