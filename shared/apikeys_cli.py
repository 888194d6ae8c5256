"""``python -m shared apikey create|list|revoke``: a shop's API keys for MCP clients
(``shared.apikeys``). A new key is printed once: only its SHA-256 is kept."""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from shared.cli import run_shop_action

if TYPE_CHECKING:
    from shared.app import App
    from shared.models import Shop

COMMANDS = ("apikey",)
_SHOP_HELP = "shop id (default: DEFAULT_SHOP)"


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cmd = subparsers.add_parser("apikey", help="the API keys of a shop's MCP server")
    actions = cmd.add_subparsers(dest="action", required=True, metavar="ACTION")
    action = actions.add_parser("create", help="make a key and print it (once)")
    action.add_argument("--shop", help=_SHOP_HELP)
    action.add_argument(
        "--scopes", required=True, help="comma-separated: catalog:read, orders:read, orders:write"
    )
    action.add_argument("--name", default="", help="what the key is for")
    action.add_argument("--customer", help="the one customer whose orders the key may read")
    action = actions.add_parser("list", help="the shop's keys (never the keys themselves)")
    action.add_argument("--shop", help=_SHOP_HELP)
    action = actions.add_parser("revoke", help="revoke a key, by its listed prefix or itself")
    action.add_argument("key", metavar="PREFIX_OR_KEY")
    action.add_argument("--shop", help=_SHOP_HELP)


def run(args: argparse.Namespace) -> int:
    return run_shop_action(args, _ACTIONS)


def _create(app: App, shop: Shop, args: argparse.Namespace) -> int:
    from shared import apikeys

    scopes = apikeys.parse_scopes(args.scopes)
    key, record = apikeys.create_key(
        app.store, shop.id, scopes, time.time(), name=args.name, customer_id=args.customer
    )
    print(key)
    print(f"API key {record.prefix}… for {shop.id} ({', '.join(scopes)}): shown only now")
    return 0


def _list(app: App, shop: Shop, args: argparse.Namespace) -> int:
    from shared import apikeys

    for record in apikeys.list_keys(app.store, shop.id):
        state = "revoked " + _day(record.revoked_at) if record.revoked_at else "live"
        used = _day(record.last_used) if record.last_used else "never"
        print(
            f"{record.prefix}\t{record.name or '-'}\t{','.join(record.scopes)}\t"
            f"created {_day(record.created_at)}\tlast used {used}\t{state}"
        )
    return 0


def _revoke(app: App, shop: Shop, args: argparse.Namespace) -> int:
    from shared import apikeys

    record = apikeys.revoke_key(app.store, shop.id, args.key, time.time())
    print(f"API key {record.prefix} of {shop.id} revoked")
    return 0


def _day(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")


_ACTIONS = {"create": _create, "list": _list, "revoke": _revoke}
