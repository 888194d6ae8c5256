"""The operator CLI: ``python -m shared --help``. It reads the same STORE_URL as the functions."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import textwrap
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from shared.exceptions import ComptoirError, InvalidInputError
from shared.progress import ProgressLine

if TYPE_CHECKING:
    from shared.app import App
    from shared.catalog.importer import Guess
    from shared.models import Shop
    from shared.store import Store

_PRUNE_HELP = "the file is complete: remove what it no longer has (deleted, draft, archived)"
_SET_HELP = """\
{keys}
values: a list takes commas (languages=fr,en), a structure JSON
(business_hours='{{"mon": ["09:00-18:00"]}}', whatsapp_template='{{"name": "order", "language":
"fr"}}', plans='[{{"id": "month", "name": "Monthly", "price": 5000, "currency": "XOF",
"period_days": 30, "daily_messages": 100}}]', voice='{{"enabled": true}}'); key= clears an optional
setting."""


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
    cmd.add_argument(
        "--settings", type=Path, help="a JSON object of shop settings (keys of `shop set`)"
    )
    cmd.add_argument("--prune", action="store_true", help=_PRUNE_HELP)

    cmd = commands.add_parser("import-faq", help="import an FAQ (JSON list or CSV)")
    cmd.add_argument("file", type=Path)
    cmd.add_argument("--shop", help="shop id (default: DEFAULT_SHOP)")
    cmd.add_argument("--prune", action="store_true", help=_PRUNE_HELP)

    cmd = commands.add_parser("seed-demo", help="create the demo shop, its catalogue and FAQ")
    cmd.add_argument("--shop", help="shop id (default: DEFAULT_SHOP)")

    from shared.shops import SETTINGS

    cmd = commands.add_parser("shop", help="show or change a shop's settings")
    actions = cmd.add_subparsers(dest="action", required=True, metavar="ACTION")
    action = actions.add_parser("show", help="print the shop's settings as JSON")
    action.add_argument("shop", metavar="SHOP")
    action = actions.add_parser(
        "set",
        help="change settings: key=value ...",
        description="Change a shop's settings; all are checked before any is written.",
        epilog=_SET_HELP.format(keys=textwrap.fill(f"keys: {', '.join(SETTINGS)}.", 92)),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    action.add_argument("shop", metavar="SHOP")
    action.add_argument("assignments", nargs="+", metavar="KEY=VALUE")

    cmd = commands.add_parser(
        "embed-catalog",
        help="embed the products and FAQ entries that changed (the imports do it too)",
    )
    cmd.add_argument("--shop", help="shop id (default: DEFAULT_SHOP)")

    cmd = commands.add_parser("leads", help="list the leads, newest first")
    cmd.add_argument("--shop", help="shop id (default: DEFAULT_SHOP)")
    cmd.add_argument("--status", help="only leads with this status (draft, confirmed, paid...)")
    cmd.add_argument("--format", choices=["json", "csv"], default="json", help="default: json")

    cmd = commands.add_parser("subscriptions", help="list the plans customers paid for")
    cmd.add_argument("--shop", help="shop id (default: DEFAULT_SHOP)")
    cmd.add_argument("--format", choices=["json", "csv"], default="json", help="default: json")

    cmd = commands.add_parser("orders", help="list the orders with their status history")
    cmd.add_argument("--shop", help="shop id (default: DEFAULT_SHOP)")
    cmd.add_argument("--status", help="only orders with this status (confirmed, paid...)")
    cmd.add_argument("--format", choices=["json", "csv"], default="json", help="default: json")

    cmd = commands.add_parser("order", help="change an order")
    actions = cmd.add_subparsers(dest="action", required=True, metavar="ACTION")
    action = actions.add_parser(
        "set-status", help="move an order (fulfilled once delivered, cancelled...)"
    )
    action.add_argument("order_id", metavar="ID")
    action.add_argument("status", metavar="STATUS")
    action.add_argument("--shop", help="shop id (default: DEFAULT_SHOP)")

    cmd = commands.add_parser(
        "release", help="give a conversation handed to a person back to the bot"
    )
    cmd.add_argument("session_id", metavar="SESSION_ID")
    cmd.add_argument("--shop", help="shop id (default: DEFAULT_SHOP)")

    commands.add_parser(
        "tick", help="fire the due schedules once (what the deployed scheduler does every 5 min)"
    )

    cmd = commands.add_parser("serve", help="serve every HTTP function and web/ on one port")
    cmd.add_argument("--host", help="default: HOST")
    cmd.add_argument("--port", type=int, help="default: PORT")
    for module in _command_modules():
        module.add_commands(commands)
    return parser


# Ports and channels bring their own operator commands: a module with COMMANDS,
# add_commands(subparsers) and run(args) -> int, listed here once.
COMMAND_MODULES = (
    "shared.blob.cli",
    "shared.queue.cli",
    "shared.channels.cli",
    "shared.campaigns.cli",
    "shared.customer_data",
    "shared.jobs_cli",
    "shared.apikeys_cli",
    "shared.admin.cli",
    "shared.consolidator",
    "shared.notify",
)


ShopAction = Callable[["App", "Shop", argparse.Namespace], int]


def run_shop_action(args: argparse.Namespace, actions: Mapping[str, ShopAction]) -> int:
    """Run ``actions[args.action]`` on ``--shop`` (DEFAULT_SHOP by default): 2 and one line on
    stderr for a project error. The command modules with actions (campaign, jobs) share it."""
    from shared.app import get_app

    try:
        app = get_app()
        shop = app.shops.get(args.shop or app.settings.default_shop)
        return actions[args.action](app, shop, args)
    except ComptoirError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def read_json_file(path: Path) -> Any:
    """A JSON file an operator gives; InvalidInputError naming it when it cannot be read."""
    import json

    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"{path}: not a readable JSON file ({exc})") from None


def _command_modules() -> list[ModuleType]:
    return [importlib.import_module(name) for name in COMMAND_MODULES]


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    for module in _command_modules():
        if args.command in module.COMMANDS:
            code: int = module.run(args)
            return code
    from shared.app import get_app

    if args.command == "serve":
        _dev_console_defaults(args.host, args.port)
    try:
        app = get_app()
        shop = getattr(args, "shop", None) or app.settings.default_shop
        if args.command == "serve":
            host, port = args.host or app.settings.host, args.port or app.settings.port
            return _serve(host, port, app.settings.dev_read_timeout, app.settings.dev_tick_seconds)
        if args.command == "tick":
            return _tick(app)
        if args.command == "leads":
            return _leads(app.store, shop, args.status, args.format)
        if args.command == "subscriptions":
            return _subscriptions(app.store, shop, args.format)
        if args.command == "orders":
            return _orders(app.store, shop, args.status, args.format)
        if args.command == "order":
            return _set_order_status(app.store, shop, args.order_id, args.status)
        if args.command == "release":
            return _release(app.store, shop, args.session_id)
        if args.command == "shop":
            return _shop(app.store, shop, args.action, getattr(args, "assignments", []))
        from shared.catalog import importer

        if args.command == "embed-catalog":
            return _embed(app, shop, required=True)
        report: importer.ImportReport | importer.SeedReport
        if args.command == "import-catalog":
            with ProgressLine("products written") as progress:
                report = importer.import_catalog(
                    app.store,
                    shop,
                    args.file,
                    shop_name=args.name,
                    currency=args.currency,
                    settings=importer.load_settings(args.settings) if args.settings else None,
                    prune=args.prune,
                    snapshots=app.catalog_snapshots,
                    progress=progress,
                )
        elif args.command == "import-faq":
            with ProgressLine("FAQ entries written") as progress:
                report = importer.import_faq(
                    app.store,
                    shop,
                    args.file,
                    prune=args.prune,
                    snapshots=app.catalog_snapshots,
                    progress=progress,
                )
        else:
            report = importer.seed_demo(app.store, shop)
    except ComptoirError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report.summary())
    for error in report.errors:
        print(f"  rejected {error}", file=sys.stderr)
    if isinstance(report, importer.ImportReport) and report.guesses:
        _print_guesses(shop, report.guesses)
    return _embed(app, shop, required=False)


def _print_guesses(shop: str, guesses: Sequence[Guess]) -> None:
    """What a new shop got without being told, and how to change it: short, on stderr."""
    out = sys.stderr
    print(f"new shop {shop}: guessed settings (python -m shared shop show {shop}):", file=out)
    for guess in guesses:
        said = f"={guess.value} ({guess.reason})" if guess.value else f": {guess.reason}"
        print(f"  {guess.key}{said}", file=out)
    print(f"  change one: python -m shared shop set {shop} key=value", file=out)
    if any(guess.key == "currency" for guess in guesses):
        print("  (a new currency prices the products from the next import)", file=out)


def _shop(store: Store, shop_id: str, action: str, assignments: Sequence[str]) -> int:
    import json

    from shared.shops import SETTINGS, load_shop, settings_from_text, update_shop

    if action == "show":
        shop = load_shop(store, shop_id)
    else:
        before = load_shop(store, shop_id)
        changes = settings_from_text(assignments)
        shop = update_shop(store, shop_id, changes)
        if "url" in changes and shop.url != before.url:
            print("product links take the new url from the next import-catalog", file=sys.stderr)
    settings = shop.model_dump(mode="json")
    shown = {"id": shop.id, **{key: settings[key] for key in SETTINGS}}
    print(json.dumps(shown, ensure_ascii=False, indent=2))
    return 0


def _embed(app: App, shop_id: str, *, required: bool) -> int:
    """Embed what changed in the shop's catalogue with the shop's provider, when it has
    embeddings. After an import (not ``required``) a failure only warns: the catalogue is
    imported and searched by words until ``embed-catalog`` succeeds."""
    from shared.catalog.embeddings import embed_catalog
    from shared.exceptions import LLMError

    shop = app.shops.get(shop_id)
    llm = app.llm_for(shop)
    if not llm.supports_embeddings and not required:
        return 0
    try:
        with ProgressLine("items embedded") as progress:
            report = embed_catalog(app.store, shop_id, llm, progress)
        print(report.summary())
    except LLMError as exc:
        print(f"{'error' if required else 'warning'}: embeddings: {exc}", file=sys.stderr)
        if not required:
            print(
                "  the catalogue is searched by words; retry with: python -m shared "
                f"embed-catalog --shop {shop_id}",
                file=sys.stderr,
            )
        return 2 if required else 0
    finally:  # the vectors written, even before a failure, moved the version
        app.catalog_snapshots.refresh(shop_id)
    return 0


def _tick(app: App) -> int:
    from shared.tasks import run_task

    print(json.dumps(run_task(app, "tick", time.time())))
    if "queue" in app.__dict__:  # in-process, the fired work runs here: let it finish
        app.queue.close()
    return 0


def _dev_console_defaults(host: str | None, port: int | None) -> None:
    """The dev server's console works unconfigured: a session secret made for this run (its
    sign-ins end with it; the printed link signs in again) and links to this server's address."""
    import os
    import secrets

    os.environ.setdefault("ADMIN_SESSION_SECRET", secrets.token_hex(32))
    host = host or os.environ.get("HOST") or "127.0.0.1"
    port = port or int(os.environ.get("PORT") or 8080)
    os.environ.setdefault("ADMIN_URL", f"http://{host}:{port}/admin/")


def _console_line(app: App) -> str:
    """Where to open the console: the demo operator's first sign-in link, made at each start."""
    from shared.admin.operators import demo_link

    if app.settings.admin_session_secret is None:
        return "Console: off (set ADMIN_SESSION_SECRET, e.g. `openssl rand -hex 32`)"
    return f"Console: {demo_link(app.store, app.settings, app.settings.default_shop, time.time())}"


def _serve(host: str, port: int, read_timeout: float, tick_seconds: float) -> int:
    import errno
    import signal

    from shared.devserver import make_server, start_ticker

    try:
        server = make_server(host, port, read_timeout=read_timeout)
    except OSError as exc:
        # One line a newcomer can act on, not a traceback: most often another `make dev`.
        if exc.errno == errno.EADDRINUSE:
            problem = f"port {port} is in use: set PORT to a free one (PORT=8081 make dev)"
            print(f"error: {problem} or stop the other server", file=sys.stderr)
        else:
            problem = f"cannot listen on {host}:{port} ({exc.strerror})"
            print(f"error: {problem}: check HOST and PORT", file=sys.stderr)
        return 2
    # SIGTERM (a process manager, a test's launcher) stops like Ctrl-C: no new connection,
    # then the queued work is finished before the exit.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    print(f"Comptoir is serving on http://{host}:{port}/ (Ctrl-C to stop)", flush=True)
    from shared.app import get_app
    from shared.tasks import run_task

    app = get_app()
    print(_console_line(app), flush=True)
    # What EventBridge or Cloud Scheduler do when deployed: fire the due schedules.
    ticking = start_ticker(lambda: run_task(app, "tick", time.time()), tick_seconds)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one must not cut the drain short
    finally:
        ticking.set()
        server.server_close()
        if "queue" in app.__dict__:  # let in-process work (channel replies) finish first
            app.queue.close()
    return 0


LEAD_COLUMNS = [
    "id",
    "created_at",
    "status",
    "name",
    "phone",
    "address",
    "product_id",
    "product_title",
    "variant",
    "quantity",
    "unit_price",
    "total",
    "currency",
]


def _leads(store: Store, shop: str, status: str | None, fmt: str) -> int:
    from shared.crm import lead_json, list_leads
    from shared.orders import parse_status

    rows = []
    for lead in list_leads(store, shop, parse_status(status) if status else None):
        row = {**lead_json(lead), "created_at": _iso(lead.created_at)}
        rows.append({column: row[column] for column in LEAD_COLUMNS})
    return _print_rows(rows, LEAD_COLUMNS, fmt)


SUBSCRIPTION_COLUMNS = [
    "customer",
    "plan_id",
    "plan_name",
    "daily_messages",
    "started_at",
    "expires_at",
    "status",
]


def _subscriptions(store: Store, shop: str, fmt: str) -> int:
    import time

    from shared.quotas import list_subscriptions

    now = time.time()
    rows = [
        {
            "customer": subscription.id,
            "plan_id": subscription.plan_id,
            "plan_name": subscription.plan_name,
            "daily_messages": subscription.daily_messages,
            "started_at": _iso(subscription.started_at),
            "expires_at": _iso(subscription.expires_at),
            "status": "active" if subscription.expires_at > now else "expired",
        }
        for subscription in list_subscriptions(store, shop)
    ]
    return _print_rows(rows, SUBSCRIPTION_COLUMNS, fmt)


ORDER_COLUMNS = [
    *LEAD_COLUMNS[:3],
    "updated_at",
    *LEAD_COLUMNS[3:],
    "channel",
    "payment_provider",
    "payment_id",
    "history",
]


def _orders(store: Store, shop: str, status: str | None, fmt: str) -> int:
    from shared.crm import list_leads
    from shared.orders import order_json, parse_status

    rows = []
    for order in list_leads(store, shop, parse_status(status) if status else None):
        row = order_json(order)
        row["created_at"] = _iso(order.created_at)
        row["updated_at"] = _iso(order.updated_at)
        history = [{**step, "at": _iso(step["at"])} for step in row["history"]]
        # A CSV cell holds the history as "status at by actor" steps.
        row["history"] = (
            history
            if fmt == "json"
            else "; ".join(f"{h['status']} {h['at']} by {h['actor']}" for h in history)
        )
        rows.append({column: row[column] for column in ORDER_COLUMNS})
    return _print_rows(rows, ORDER_COLUMNS, fmt)


def _set_order_status(store: Store, shop: str, order_id: str, status: str) -> int:
    import time

    from shared.orders import parse_status, set_status

    order = set_status(store, shop, order_id, parse_status(status), "operator", time.time())
    print(f"order {order.id} is {order.status}")
    return 0


def _iso(timestamp: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def _print_rows(rows: Sequence[Mapping[str, object]], columns: list[str], fmt: str) -> int:
    import csv
    import json

    if fmt == "json":
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    # CRLF rows, as RFC 4180 says: the writer then quotes a cell holding a CR, which a
    # spreadsheet would otherwise take as the end of the row.
    writer = csv.DictWriter(sys.stdout, fieldnames=columns, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({column: _cell(value) for column, value in row.items()})
    return 0


# What makes a spreadsheet read a cell as a formula (OWASP, CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> object:
    """A text cell that cannot run as a formula: customers typed the name and address, shop
    files the titles and variants. A leading apostrophe makes the spreadsheet show the text as it
    is, which also keeps an E.164 phone ("+221…") a phone rather than a number or a sum."""
    if isinstance(value, str) and value.lstrip(" ").startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def _release(store: Store, shop: str, session_id: str) -> int:
    from shared.conversations import set_state

    set_state(store, shop, session_id, "bot")
    print(f"released {session_id}: the assistant answers again")
    return 0
