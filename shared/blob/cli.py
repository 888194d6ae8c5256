"""Operator command ``publish-web``: upload the built widget to S3, GCS or a local folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from shared.exceptions import ComptoirError

COMMANDS = ("publish-web",)


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cmd = subparsers.add_parser(
        "publish-web", help="upload the built widget to object storage (S3, GCS, a folder)"
    )
    cmd.add_argument("--dir", type=Path, default=Path("web/dist"), help="default: web/dist")
    cmd.add_argument(
        "--to",
        metavar="BLOB_URL",
        help="s3://BUCKET, gs://BUCKET or a folder (default: WIDGET_BLOB_URL)",
    )
    cmd.add_argument("--prefix", default="widget/", help="key prefix (default: widget/)")
    cmd.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="FOLDER",
        help="a top-level folder of --dir not to upload (repeatable)",
    )


def run(args: argparse.Namespace) -> int:
    from shared.blob import open_blob
    from shared.blob.publish import publish_dir
    from shared.settings import Settings

    try:
        url = args.to or Settings.from_env().widget_blob_url
        with open_blob(url) as blob:
            published = publish_dir(blob, args.dir, prefix=args.prefix, exclude=args.exclude)
            # Only public URLs are shown: a presigned one carries a signature and a key id.
            loader_urls = [
                blob.url(f.key) for f in published if f.role == "loader" and blob.public_url
            ]
    except ComptoirError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    width = max(len(f.key) for f in published)
    for f in published:
        print(f"  {f.key:<{width}}  {f.size:>9,} B  {f.content_type:<31}  {f.cache_control}")
    total = sum(f.size for f in published)
    print(f"published {len(published)} files, {total:,} bytes, to {url.split('?', 1)[0]}")
    for loader_url in loader_urls:
        print(f"loader: {loader_url}")
    return 0
