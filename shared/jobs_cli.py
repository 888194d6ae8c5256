"""``python -m shared jobs ...``: list, add, disable and run scheduled jobs (``shared.jobs``)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING

from shared.cli import read_json_file, run_shop_action
from shared.exceptions import InvalidInputError

if TYPE_CHECKING:
    from shared.app import App
    from shared.models import Shop

COMMANDS = ("jobs",)
_SHOP_HELP = "shop id (default: DEFAULT_SHOP)"


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cmd = subparsers.add_parser("jobs", help="scheduled messages and customers' reminders")
    actions = cmd.add_subparsers(dest="action", required=True, metavar="ACTION")
    action = actions.add_parser("list", help="the shop's jobs and reminders")
    action.add_argument("--shop", help=_SHOP_HELP)
    action = actions.add_parser(
        "add",
        help="add a job from a JSON file",
        description="The file: {schedule: {cron | at, timezone?}, customer_id | segment, "
        "channel?, text | prompt, enabled?}; `at` is epoch seconds or an ISO local time in the "
        "shop's timezone.",
    )
    action.add_argument("--file", type=Path, required=True)
    action.add_argument("--shop", help=_SHOP_HELP)
    action = actions.add_parser("disable", help="stop a job (it stays listed)")
    action.add_argument("job_id", metavar="ID")
    action.add_argument("--shop", help=_SHOP_HELP)
    action = actions.add_parser("run-now", help="send a job's messages now, once")
    action.add_argument("job_id", metavar="ID")
    action.add_argument("--shop", help=_SHOP_HELP)


def run(args: argparse.Namespace) -> int:
    return run_shop_action(args, _ACTIONS)


def _list(app: App, shop: Shop, args: argparse.Namespace) -> int:
    from shared import jobs
    from shared.schedules import next_fire

    now = time.time()
    for job in jobs.list_jobs(app.store, shop.id):
        state = "enabled" if job.enabled else "disabled"
        spec = job.schedule
        when = f"cron {spec.cron}" if spec.cron else "at " + _local(spec.at or 0.0, spec.timezone)
        following = next_fire(spec, now) if job.enabled else None
        after = "next " + _local(following, spec.timezone) if following else "no next run"
        last = "last " + _local(job.last_run_at, spec.timezone) if job.last_run_at else "never run"
        target = f"customer {job.customer_id}" if job.customer_id else "segment"
        print(f"{job.id}\t{job.created_by}\t{state}\t{when}\t{after}\t{last}\t{target}")
    return 0


def _add(app: App, shop: Shop, args: argparse.Namespace) -> int:
    from shared import jobs

    description = read_json_file(args.file)
    now = time.time()
    try:
        job = jobs.build(shop, description, now)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{args.file}: {exc}") from None
    saved = jobs.save_job(app.store, job, now)
    print(f"job {saved.id} saved")
    return 0


def _disable(app: App, shop: Shop, args: argparse.Namespace) -> int:
    from shared import jobs

    jobs.disable(app.store, shop.id, args.job_id, time.time())
    print(f"job {args.job_id} disabled")
    return 0


def _run_now(app: App, shop: Shop, args: argparse.Namespace) -> int:
    from shared import jobs

    job = jobs.load_job(app.store, shop.id, args.job_id)
    done = jobs.run(app, shop, job, None, time.time())
    counts = ", ".join(f"{s} {n}" for s, n in sorted(done.statuses.items()))
    print(f"run {done.id}: {counts or 'nobody to reach'}")
    return 0


def _local(at: float, timezone: str) -> str:
    from datetime import datetime

    from shared.hours import zone

    return datetime.fromtimestamp(at, zone(timezone)).strftime("%Y-%m-%d %H:%M %Z")


_ACTIONS = {"list": _list, "add": _add, "disable": _disable, "run-now": _run_now}
