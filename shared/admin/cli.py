"""``python -m shared operator ...``: add, list and remove a shop's console operators, and give
one a sign-in link (``shared.admin.operators``)."""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from shared.cli import run_shop_action

if TYPE_CHECKING:
    from shared.admin.operators import OperatorRecord
    from shared.app import App
    from shared.models import Shop

COMMANDS = ("operator",)
_SHOP_HELP = "shop id (default: DEFAULT_SHOP)"


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cmd = subparsers.add_parser("operator", help="the console's operators of a shop")
    actions = cmd.add_subparsers(dest="action", required=True, metavar="ACTION")
    action = actions.add_parser(
        "add", help="add an operator and print their first sign-in link (24 h, once)"
    )
    action.add_argument("email", metavar="EMAIL")
    action.add_argument("--shop", help=_SHOP_HELP)
    action = actions.add_parser("link", help="print a new sign-in link (24 h, once)")
    action.add_argument("email", metavar="EMAIL")
    action.add_argument("--shop", help=_SHOP_HELP)
    action = actions.add_parser("list", help="the shop's operators")
    action.add_argument("--shop", help=_SHOP_HELP)
    action = actions.add_parser("remove", help="remove an operator and end their sessions")
    action.add_argument("email", metavar="EMAIL")
    action.add_argument("--shop", help=_SHOP_HELP)


def run(args: argparse.Namespace) -> int:
    return run_shop_action(args, _ACTIONS)


def _add(app: App, shop: Shop, args: argparse.Namespace) -> int:
    from shared.admin import operators

    now = time.time()
    record = operators.add_operator(app.store, shop.id, args.email, now)
    print(f"operator {record.email} added to {shop.id}")
    _print_link(app, record, now)
    return 0


def _link(app: App, shop: Shop, args: argparse.Namespace) -> int:
    from shared.admin import operators
    from shared.admin.exceptions import UnknownRecordError

    record = operators.find_by_email(app.store, args.email)
    if record is None or record.shop != shop.id:
        raise UnknownRecordError(f"no operator {args.email} in {shop.id}")
    _print_link(app, record, time.time())
    return 0


def _list(app: App, shop: Shop, args: argparse.Namespace) -> int:
    from shared.admin import operators

    for record in sorted(operators.list_operators(app.store, shop.id), key=lambda r: r.email):
        added = datetime.fromtimestamp(record.created_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
        password = "password set" if record.password_hash else "no password yet"
        print(f"{record.email}\tadded {added}\t{password}")
    return 0


def _remove(app: App, shop: Shop, args: argparse.Namespace) -> int:
    from shared.admin import operators

    record = operators.remove_operator(app.store, shop.id, args.email)
    print(f"operator {record.email} removed from {shop.id}; their sessions are ended")
    return 0


def _print_link(app: App, record: OperatorRecord, now: float) -> None:
    from shared.admin import operators

    token = operators.new_link(app.store, record, now)
    print(f"sign-in link (valid 24 h, once): {operators.link_url(app.settings, token)}")


_ACTIONS = {"add": _add, "link": _link, "list": _list, "remove": _remove}
