"""Operator commands for work that failed for good: ``python -m shared deadletters list`` and
``python -m shared deadletters replay ID``."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from shared.exceptions import ComptoirError

if TYPE_CHECKING:
    from shared.app import App

COMMANDS = ("deadletters",)


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cmd = subparsers.add_parser("deadletters", help="list or replay work that failed for good")
    actions = cmd.add_subparsers(dest="deadletters_action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="the shop's dead letters, newest first (JSON)")
    listing.add_argument("--shop", help="shop id (default: DEFAULT_SHOP)")
    again = actions.add_parser("replay", help="send a dead letter's work again, as new")
    again.add_argument("id", metavar="ID")
    again.add_argument("--shop", help="shop id (default: DEFAULT_SHOP)")


def run(args: argparse.Namespace) -> int:
    from shared.app import get_app

    try:
        app = get_app()
        shop = args.shop or app.settings.default_shop
        if args.deadletters_action == "list":
            return _list(app, shop)
        return _replay(app, shop, args.id)
    except ComptoirError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _list(app: App, shop: str) -> int:
    from shared.worker import list_dead_letters

    letters = [
        {
            "id": letter.id,
            "at": _iso(letter.at),
            "status": letter.status,
            "kind": letter.kind,
            "attempts": letter.attempts,
            "reason": letter.reason,
            "replayed_at": _iso(letter.replayed_at),
            "replayed_as": letter.replayed_as,
        }
        for letter in list_dead_letters(app.store, shop)
    ]
    print(json.dumps(letters, ensure_ascii=False, indent=2))
    return 0


def _replay(app: App, shop: str, doc_id: str) -> int:
    from shared.queue import open_queue
    from shared.worker import deliver, replay

    # A queue of its own, closed before exiting: in-process, that runs the replayed work here.
    queue = open_queue(app.settings.queue_url, process=partial(deliver, app=app))
    try:
        item = replay(app.store, queue, shop, doc_id)
    finally:
        queue.close()
    print(f"replayed {doc_id}: {item.kind} sent again as a first attempt")
    return 0


def _iso(timestamp: Any) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(float(timestamp), UTC).isoformat(timespec="seconds")
