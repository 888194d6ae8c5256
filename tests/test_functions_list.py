"""``functions.FUNCTIONS``, the one list of deployable functions, against the code: every module
of ``functions/`` is in it and nothing else, each has its targets, and the routes listed are
exactly those its HTTPFunction serves. (The deploys are checked against it in tests/deploy.)"""

from __future__ import annotations

import ast
import importlib
import json
from collections import Counter
from pathlib import Path

import pytest

from functions import FUNCTIONS, Function
from shared.http import HTTPFunction
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SECRET_NAMES = set(json.loads((ROOT / "infra" / "secret-names.json").read_text()))


def modules_with_a_handler() -> list[str]:
    """Modules of functions/ that define a deployable handler, read from their source."""
    found = []
    for path in sorted((ROOT / "functions").glob("*.py")):
        body = ast.parse(path.read_text()).body
        names = {
            target.id
            for node in body
            if isinstance(node, ast.Assign)
            for target in node.targets
            if isinstance(target, ast.Name)
        } | {node.name for node in body if isinstance(node, ast.FunctionDef)}
        if names & {"handler", "lambda_handler"}:
            found.append(path.stem)
    return found


def test_every_function_module_is_listed_and_nothing_else() -> None:
    names = [fn.name for fn in FUNCTIONS]
    assert {"chat", "health", "worker"} <= set(names)
    assert sorted(names) == modules_with_a_handler()
    assert len(set(names)) == len(names)
    assert len({fn.short for fn in FUNCTIONS}) == len(FUNCTIONS)


@pytest.mark.parametrize("fn", FUNCTIONS, ids=lambda fn: fn.name)
def test_each_function_has_its_targets_and_serves_exactly_its_routes(fn: Function) -> None:
    module = importlib.import_module(f"functions.{fn.name}")
    assert callable(module.lambda_handler)
    assert callable(getattr(module, fn.name))  # the functions-framework target
    handler = getattr(module, "handler", None)
    if fn.routes:
        assert isinstance(handler, HTTPFunction)
        assert handler.name == fn.name
        # A route served but not listed would 404 on AWS; one listed but not served, everywhere.
        assert handler.routes == set(fn.routes)
        assert all(r.split(" ")[1].startswith(handler.mount) for r in fn.routes)
    else:
        assert not isinstance(handler, HTTPFunction)


def test_routes_are_well_formed_and_each_has_one_function() -> None:
    routes = [route for fn in FUNCTIONS for route in fn.routes]
    assert [r for r, n in Counter(routes).items() if n > 1] == []
    for route in routes:
        method, path = route.split(" ")
        assert method in {"GET", "POST", "PUT", "PATCH", "DELETE"}, route
        assert path.startswith("/") and (path == "/" or not path.endswith("/")), route


def test_the_queue_has_one_consumer_which_is_not_public() -> None:
    consumers = [fn for fn in FUNCTIONS if fn.queue_trigger]
    assert [fn.name for fn in consumers] == ["worker"]
    assert not consumers[0].public and not consumers[0].routes


def test_schedules_name_distinct_tasks_with_five_field_crons() -> None:
    schedules = [s for fn in FUNCTIONS for s in fn.schedules]
    assert len({s.task for s in schedules}) == len(schedules)
    for schedule in schedules:
        fields = schedule.cron.split()
        assert len(fields) == 5, schedule
        assert not any(c.isdigit() for c in fields[4]), "name the weekdays: MON-FRI"


def test_secrets_and_settings_are_known_variables() -> None:
    aliases = {field.alias for field in Settings.model_fields.values()}
    for fn in FUNCTIONS:
        assert set(fn.secrets) <= SECRET_NAMES, fn.name
        assert set(fn.settings) <= aliases - SECRET_NAMES, fn.name
