"""``python -m shared campaign ...``: create, list, preview, run and report campaigns."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING

from shared.cli import read_json_file, run_shop_action
from shared.progress import ProgressLine

if TYPE_CHECKING:
    from shared.app import App
    from shared.models import Shop

COMMANDS = ("campaign",)


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cmd = subparsers.add_parser(
        "campaign", help="marketing campaigns: create, preview, run, report"
    )
    actions = cmd.add_subparsers(dest="action", required=True, metavar="ACTION")
    action = actions.add_parser("create", help="create a campaign from a JSON file")
    action.add_argument("--file", type=Path, required=True)
    action.add_argument("--replace", action="store_true", help="replace a campaign with that id")
    action.add_argument("--shop", help="shop id (default: DEFAULT_SHOP)")
    action = actions.add_parser("list", help="the shop's campaigns")
    action.add_argument("--shop", help="shop id (default: DEFAULT_SHOP)")
    action = actions.add_parser("preview", help="audience and first messages; sends nothing")
    action.add_argument("campaign_id", metavar="ID")
    action.add_argument("--limit", type=int, default=20)
    action.add_argument("--shop", help="shop id (default: DEFAULT_SHOP)")
    action = actions.add_parser("run", help="run (or resume) a campaign now, here")
    action.add_argument("campaign_id", metavar="ID")
    action.add_argument("--dry-run", action="store_true", help="render every message, send none")
    action.add_argument("--ignore-quiet-hours", action="store_true")
    action.add_argument("--shop", help="shop id (default: DEFAULT_SHOP)")
    for name, does in (("disable", "stop"), ("enable", "start again")):
        action = actions.add_parser(name, help=f"{does} a campaign: schedule and unsent batches")
        action.add_argument("campaign_id", metavar="ID")
        action.add_argument("--shop", help="shop id (default: DEFAULT_SHOP)")
    action = actions.add_parser("report", help="runs, each message's status, replies and orders")
    action.add_argument("campaign_id", metavar="ID")
    action.add_argument("--sends", type=int, default=50, help="messages listed (default 50)")
    action.add_argument("--shop", help="shop id (default: DEFAULT_SHOP)")


def run(args: argparse.Namespace) -> int:
    return run_shop_action(args, _ACTIONS)


def _create(app: App, shop: Shop, args: argparse.Namespace) -> int:
    from shared.campaigns import definitions
    from shared.exceptions import AlreadyExistsError, InvalidInputError

    description = read_json_file(args.file)
    now = time.time()
    built = definitions.build(shop, description, now)
    try:
        campaign = definitions.save(app.store, shop, built, now, replace=args.replace)
    except AlreadyExistsError as exc:
        raise InvalidInputError(f"{exc} (create it with --replace to change it)") from None
    when = _when(campaign.schedule.at, campaign.schedule.cron)
    print(f"campaign {campaign.id} saved ({when})")
    print(f"preview it: python -m shared campaign preview {campaign.id}")
    return 0


def _list(app: App, shop: Shop, args: argparse.Namespace) -> int:
    from shared.campaigns.definitions import list_campaigns

    for campaign in list_campaigns(app.store, shop.id):
        state = "enabled" if campaign.enabled else "disabled"
        when = _when(campaign.schedule.at, campaign.schedule.cron)
        print(f"{campaign.id}\t{campaign.recipe or '-'}\t{state}\t{when}\t{campaign.name}")
    return 0


def _preview(app: App, shop: Shop, args: argparse.Namespace) -> int:
    from shared.campaigns.definitions import load_campaign
    from shared.campaigns.runner import preview

    campaign = load_campaign(app.store, shop.id, args.campaign_id)
    shown = preview(app, shop, campaign, time.time(), max(1, args.limit))
    _print_audience(shown.audience, shown.by_channel, shown.left_out)
    for recipient, text in shown.messages:
        print(f"--- {recipient.channel} · customer {recipient.customer_id} ({recipient.lang})")
        print(text)
    return 0


def _run(app: App, shop: Shop, args: argparse.Namespace) -> int:
    from shared.campaigns.definitions import load_campaign
    from shared.campaigns.runner import preview, run_by_hand

    campaign = load_campaign(app.store, shop.id, args.campaign_id)
    if args.dry_run:
        shown = preview(app, shop, campaign, time.time(), None)
        _print_audience(shown.audience, shown.by_channel, shown.left_out)
        print(f"dry run: {shown.rendered} messages rendered in {shown.seconds:.1f} s, none sent")
        return 0
    with ProgressLine("messages") as progress:
        run_, statuses = run_by_hand(
            app,
            shop,
            campaign,
            time.time(),
            ignore_quiet_hours=args.ignore_quiet_hours,
            progress=progress,
        )
    counts = ", ".join(f"{status} {count}" for status, count in sorted(statuses.items()))
    print(f"run {run_.id}: {run_.status}; audience {run_.audience}; {counts or 'nothing to send'}")
    if statuses.get("deferred"):
        print("quiet hours: the rest goes when they end (or run again with --ignore-quiet-hours)")
    return 0


def _switch(app: App, shop: Shop, args: argparse.Namespace) -> int:
    from shared.campaigns.definitions import set_enabled

    enabled = args.action == "enable"
    set_enabled(app.store, shop, args.campaign_id, enabled, time.time())
    print(f"campaign {args.campaign_id} {'enabled' if enabled else 'disabled'}")
    return 0


def _report(app: App, shop: Shop, args: argparse.Namespace) -> int:
    from shared.campaigns.definitions import load_campaign
    from shared.campaigns.report import report, status_of

    load_campaign(app.store, shop.id, args.campaign_id)  # an unknown id is an error, not "none"
    now = time.time()
    found = report(app.store, shop.id, args.campaign_id, now)
    for run_ in found.runs:
        left_out = run_.left_out or "-"
        print(f"run {run_.id}: {run_.status}, audience {run_.audience}, left out {left_out}")
    statuses = ", ".join(f"{s} {n}" for s, n in sorted(found.statuses.items())) or "none"
    print(f"messages: {statuses}")
    if found.reasons:
        print("reasons: " + ", ".join(f"{r} {n}" for r, n in sorted(found.reasons.items())))
    revenue = ", ".join(f"{amount} {code}" for code, amount in found.revenue.items()) or "0"
    print(f"replies {found.replies}, orders {found.orders}, paid {found.payments} ({revenue})")
    for send in sorted(found.sends, key=lambda s: s.at)[: max(0, args.sends)]:
        detail = send.reason or (send.message_id or "")
        print(f"  {send.channel}\t{send.customer_id}\t{status_of(send, now)}\t{detail}")
    return 0


def _print_audience(size: int, by_channel: dict[str, int], left_out: dict[str, int]) -> None:
    channels = ", ".join(f"{c} {n}" for c, n in sorted(by_channel.items())) or "nobody"
    print(f"audience: {size} ({channels})")
    if left_out:
        print("left out: " + ", ".join(f"{r} {n}" for r, n in sorted(left_out.items())))


def _when(at: float | None, cron: str | None) -> str:
    if cron:
        return f"cron {cron}"
    if at is not None:
        return "once at " + time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(at))
    return "by hand"


_ACTIONS = {
    "create": _create,
    "list": _list,
    "preview": _preview,
    "run": _run,
    "report": _report,
    "disable": _switch,
    "enable": _switch,
}
