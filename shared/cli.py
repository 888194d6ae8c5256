"""The operator CLI: ``python -m shared --help``. It reads the same STORE_URL as the functions."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from shared.exceptions import ComptoirError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m shared", description="Comptoir operator commands."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    cmd = commands.add_parser(
        "import-catalog", help="import a Shopify CSV/products.json or our JSON"
    )
    cmd.add_argument("file", type=Path)
    cmd.add_argument("--shop", help="shop id (default: DEFAULT_SHOP)")
    cmd.add_argument("--name", help="shop name, when the shop is created")
    cmd.add_argument("--currency", help="ISO currency of the prices (default: the shop's)")

    cmd = commands.add_parser("import-faq", help="import an FAQ (JSON list or CSV)")
    cmd.add_argument("file", type=Path)
    cmd.add_argument("--shop", help="shop id (default: DEFAULT_SHOP)")

    cmd = commands.add_parser("seed-demo", help="create the demo shop, its catalogue and FAQ")
    cmd.add_argument("--shop", help="shop id (default: DEFAULT_SHOP)")

    cmd = commands.add_parser("serve", help="serve every HTTP function and web/ on one port")
    cmd.add_argument("--host", help="default: HOST")
    cmd.add_argument("--port", type=int, help="default: PORT")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from shared.app import get_app

    try:
        app = get_app()
        shop = getattr(args, "shop", None) or app.settings.default_shop
        if args.command == "serve":
            return _serve(args.host or app.settings.host, args.port or app.settings.port)
        from shared.catalog import importer

        report: importer.ImportReport | importer.SeedReport
        if args.command == "import-catalog":
            report = importer.import_catalog(
                app.store, shop, args.file, shop_name=args.name, currency=args.currency
            )
        elif args.command == "import-faq":
            report = importer.import_faq(app.store, shop, args.file)
        else:
            report = importer.seed_demo(app.store, shop)
    except ComptoirError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report.summary())
    for error in report.errors:
        print(f"  skipped {error}", file=sys.stderr)
    return 0


def _serve(host: str, port: int) -> int:
    from shared.devserver import make_server

    server = make_server(host, port)
    print(f"Comptoir is serving on http://{host}:{port}/ (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
