"""The packaged AWS template (`osls package --stage ci`): wiring, routes, queue, data, IAM,
secrets, packages, and cfn-lint."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from functions import FUNCTIONS, Function, Schedule
from shared.settings import Settings
from tests.deploy.conftest import CI_STAGE, ROOT, Packaged, osls_env, run_osls

SECRET_NAMES: list[str] = json.loads((ROOT / "infra" / "secret-names.json").read_text())
# The HTTP contract: routes by function. A function not listed yet (payments, tasks) is not
# deployed; once it is, these are its routes.
CONTRACT: dict[str, set[str]] = {
    "chat": {
        "POST /chat",
        "GET /chat/history",
        "POST /chat/voice/session",
        "POST /chat/voice/tools",
        "POST /chat/voice/transcript",
    },
    "health": {"GET /healthz"},
    "webhook_whatsapp": {"GET /webhooks/whatsapp", "POST /webhooks/whatsapp"},
    "webhook_telegram": {"POST /webhooks/telegram"},
    "payments": {"POST /webhooks/payments/{provider}"},
    "tasks": {"POST /tasks/{name}"},
}
TABLE_ACTIONS = {
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
}
SEND = {"sqs:SendMessage", "sqs:GetQueueUrl"}
CONSUME = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}
# Reads, and the heartbeat write (narrowed to its one partition by a condition).
HEARTBEAT = {"dynamodb:GetItem", "dynamodb:UpdateItem"}
LOGS = {"logs:CreateLogStream", "logs:PutLogEvents"}
# Who builds a retrieval index (a cold start reads the snapshot, a miss writes it) or imports a
# catalogue (the console's upload replaces it): objects under catalog/ in the data bucket.
CATALOG_OBJECTS = "DataBucket/catalog/*"
CATALOG_ACTIONS = {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"}
CATALOG_USERS = {"chat", "worker", "admin"}
# E-mail replies through SES (EMAIL_SEND_MODE=ses) come from the worker and the console only, as
# the one identity the stage names (param emailSesIdentity).
SES_SENDERS = {"worker", "admin"}
SES_IDENTITY = "ses:identity"
# Variables a function has on AWS only, beyond its listed secrets and settings: one model call
# must end within the HTTP API's 30 s (Google Cloud's 60 s need no such bound).
AWS_ONLY_VARIABLES = {"chat": {"LLM_TIMEOUT"}}


def expected_grants(fn: Function) -> dict[str, set[str]]:
    """What a listed function's role may do, and on what (logical ids)."""
    grants = {"Table": TABLE_ACTIONS if fn.store == "read_write" else HEARTBEAT}
    queue = (CONSUME if fn.queue_trigger else set()) | (SEND if fn.publishes else set())
    if queue:
        grants["InboundQueue"] = queue
    if fn.name in CATALOG_USERS:
        grants[CATALOG_OBJECTS] = CATALOG_ACTIONS
    if fn.name == "worker":  # the voice notes it sends
        grants["DataBucket/voice-notes/*"] = {"s3:PutObject"}
    if fn.name in SES_SENDERS:
        grants[SES_IDENTITY] = {"ses:SendRawEmail"}
    return grants


def resource_target(resource: dict[str, Any]) -> str:
    """A statement's resource as a logical id, or ``Id/path`` for the objects under a path."""
    if "Fn::GetAtt" in resource:
        return str(resource["Fn::GetAtt"][0])
    ses = re.fullmatch(
        r"arn:\$\{AWS::Partition\}:ses:\$\{AWS::Region\}:\$\{AWS::AccountId\}:identity/(.+)",
        resource["Fn::Sub"],
    )
    if ses is not None:
        assert ses[1] == "unset.invalid", ses[1]  # the stage's parameter, one identity
        return SES_IDENTITY
    found = re.fullmatch(r"\$\{(\w+)\.Arn\}/(.+)", resource["Fn::Sub"])
    assert found is not None, resource
    return f"{found[1]}/{found[2]}"


def eventbridge_cron(schedule: Schedule) -> str:
    """A five-field cron as EventBridge writes it: six fields, one of the days a "?"."""
    minute, hour, day, month, weekday = schedule.cron.split()
    if weekday == "*":
        weekday = "?"
    else:
        day = "?"
    return f"cron({minute} {hour} {day} {month} {weekday} *)"


# What a browser shows a cross-origin script without Access-Control-Expose-Headers.
CORS_SAFELISTED = {
    "Cache-Control", "Content-Language", "Content-Length", "Content-Type", "Expires",
    "Last-Modified", "Pragma",
}  # fmt: skip
WIDGET_SOURCE = "\n".join(p.read_text() for p in sorted((ROOT / "web" / "src").glob("*.js")))

# cfn-lint findings that are accepted, each for a reason.
IGNORED_CHECKS = {
    # "dependency already enforced by a GetAtt/Ref": osls writes a DependsOn next to each
    # function's role and each route's integration. Redundant, harmless, and not ours to edit.
    "W3005",
}


def routes_by_function(packaged: Packaged) -> dict[str, set[str]]:
    integrations = {
        logical_id: resource["Properties"]["IntegrationUri"]["Fn::GetAtt"][0]
        for logical_id, resource in packaged.resources("AWS::ApiGatewayV2::Integration").items()
    }
    by_logical = {f["LogicalId"]: m for m, f in packaged.functions().items()}
    routes: dict[str, set[str]] = {}
    for route in packaged.resources("AWS::ApiGatewayV2::Route").values():
        target = route["Properties"]["Target"]["Fn::Join"][1][1]["Ref"]
        module = by_logical[integrations[target]]
        routes.setdefault(module, set()).add(route["Properties"]["RouteKey"])
    return routes


def _function_of(packaged: Packaged, target: Any) -> str:
    """The function a resource's target (a GetAtt of its logical id) names."""
    (module,) = (m for m, f in packaged.functions().items() if f["LogicalId"] in json.dumps(target))
    return module


def schedules_by_function(packaged: Packaged) -> set[tuple[str, str, str | None, str]]:
    """(function, expression, time zone, task) of every schedule, EventBridge rule or
    EventBridge Scheduler's."""
    found: set[tuple[str, str, str | None, str]] = set()
    for rule in packaged.resources("AWS::Events::Rule").values():
        props = rule["Properties"]
        for target in props["Targets"]:
            function, task = _function_of(packaged, target["Arn"]), json.loads(target["Input"])
            found.add((function, props["ScheduleExpression"], None, task["task"]))
    for schedule in packaged.resources("AWS::Scheduler::Schedule").values():
        props = schedule["Properties"]
        target, zone = props["Target"], props.get("ScheduleExpressionTimezone")
        task = json.loads(target["Input"])["task"]
        found.add((_function_of(packaged, target["Arn"]), props["ScheduleExpression"], zone, task))
    return found


def env_of(packaged: Packaged, module: str) -> dict[str, Any]:
    variables: dict[str, Any] = packaged.functions()[module]["Properties"]["Environment"][
        "Variables"
    ]
    return variables


def test_packaging_reached_no_aws(packaged: Packaged) -> None:
    print(f"\nosls package --stage {CI_STAGE}: {packaged.seconds:.1f} s")
    # One read, answered "no such stack" by the stand-in: osls checks for a layer to reuse.
    assert set(packaged.aws_calls) <= {"DescribeStacks"}


def test_every_listed_function_is_deployed_as_listed(packaged: Packaged) -> None:
    deployed = packaged.functions()
    assert {"chat", "health"} <= set(deployed)
    assert sorted(deployed) == sorted(fn.name for fn in FUNCTIONS), "serverless.yml and the list"
    for fn in FUNCTIONS:
        props = deployed[fn.name]["Properties"]
        assert props["Handler"] == f"functions/{fn.name}.lambda_handler"
        assert props["Runtime"] == "python3.12"
        assert props["Architectures"] == ["arm64"]
        assert props["FunctionName"] == f"comptoir-{CI_STAGE}-{fn.name}"
        assert props["Layers"] == [{"Ref": "DepsLambdaLayer"}]
        assert (props["MemorySize"], props["Timeout"]) == (fn.memory_mb, fn.aws_timeout_s), fn.name


def test_the_http_api_routes_are_exactly_the_listed_ones(packaged: Packaged) -> None:
    # Both ways: a listed route missing on AWS would 404 there; an extra one reaches a function
    # that does not serve it (tests/test_functions_list.py: the list is what the code serves).
    routes = routes_by_function(packaged)
    assert routes == {fn.name: set(fn.routes) for fn in FUNCTIONS if fn.routes}
    for fn in FUNCTIONS:
        if fn.name in CONTRACT:
            assert set(fn.routes) == CONTRACT[fn.name], fn.name
    assert "worker" not in routes  # the worker is not public


def test_the_queue_triggers_are_exactly_the_listed_ones(packaged: Packaged) -> None:
    triggered = {
        _function_of(packaged, mapping["Properties"]["FunctionName"])
        for mapping in packaged.resources("AWS::Lambda::EventSourceMapping").values()
    }
    assert triggered == {fn.name for fn in FUNCTIONS if fn.queue_trigger}


def test_the_schedules_are_exactly_the_listed_ones(packaged: Packaged) -> None:
    # Scheduled in the list's time zone (EventBridge Scheduler), not in UTC (a plain rule).
    listed = {
        (fn.name, eventbridge_cron(s), s.time_zone, s.task)
        for fn in FUNCTIONS
        for s in fn.schedules
    }
    assert schedules_by_function(packaged) == listed


def test_cors_preflight_is_answered_by_the_http_api(packaged: Packaged) -> None:
    cors = packaged.template["Resources"]["HttpApi"]["Properties"]["CorsConfiguration"]
    assert {"GET", "POST", "OPTIONS"} <= set(cors["AllowMethods"])
    assert "Content-Type" in cors["AllowHeaders"]
    # The API's CORS replaces the function's headers: what the widget reads must be exposed.
    read = set(re.findall(r'headers\.get\("([^"]+)"\)', WIDGET_SOURCE)) - CORS_SAFELISTED
    assert "Retry-After" in read
    assert read <= set(cors["ExposeHeaders"])
    assert cors["AllowOrigins"] == ["*"]  # the default params; a stage sets its shop's origins
    assert env_of(packaged, "chat")["ALLOWED_ORIGINS"] == "*"


def test_the_worker_reads_the_fifo_queue_with_partial_batch_failures(packaged: Packaged) -> None:
    mappings = packaged.resources("AWS::Lambda::EventSourceMapping")
    assert len(mappings) == 1
    mapping = next(iter(mappings.values()))["Properties"]
    assert mapping["FunctionName"] == {"Fn::GetAtt": ["WorkerLambdaFunction", "Arn"]}
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["InboundQueue", "Arn"]}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert 1 <= mapping["BatchSize"] <= 10
    assert "MaximumBatchingWindowInSeconds" not in mapping  # FIFO queues refuse one

    queue = packaged.template["Resources"]["InboundQueue"]["Properties"]
    dlq = packaged.template["Resources"]["InboundDeadLetterQueue"]["Properties"]
    worker = packaged.functions()["worker"]["Properties"]
    assert queue["QueueName"] == f"comptoir-{CI_STAGE}-inbound.fifo"
    assert queue["FifoQueue"] is True and dlq["FifoQueue"] is True
    assert queue["ContentBasedDeduplication"] is False  # the code sends dedup ids
    # AWS refuses an event source whose queue hides a message for less than the function may
    # run; beyond that, the timeout is how long a failed turn (and its conversation's next
    # messages) waits for its retry: at most 2x the worker's timeout, not the 6x (540 s) it was.
    assert worker["Timeout"] <= queue["VisibilityTimeout"] <= 2 * worker["Timeout"]
    redrive = queue["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["InboundDeadLetterQueue", "Arn"]}
    # The worker records its own dead letter at attempt WORKER_MAX_ATTEMPTS; SQS allows one
    # more delivery, for a last attempt that died before it could.
    attempts = int(worker["Environment"]["Variables"]["WORKER_MAX_ATTEMPTS"])
    assert redrive["maxReceiveCount"] == attempts + 1
    assert env_of(packaged, "worker")["QUEUE_URL"] == (
        f"sqs://{queue['QueueName']}?region=eu-west-1"
    )


def _alarms(packaged: Packaged) -> dict[str, dict[str, Any]]:
    return {
        logical_id: alarm["Properties"]
        for logical_id, alarm in packaged.resources("AWS::CloudWatch::Alarm").items()
    }


def _notifies_the_topic(alarm: dict[str, Any]) -> bool:
    return bool(alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}])


def test_every_function_has_errors_throttles_and_duration_alarms(packaged: Packaged) -> None:
    by_function: dict[str, dict[str, dict[str, Any]]] = {}
    for alarm in _alarms(packaged).values():
        if alarm.get("Namespace") == "AWS/Lambda":
            (dimension,) = alarm["Dimensions"]
            assert dimension["Name"] == "FunctionName"
            by_function.setdefault(dimension["Value"], {})[alarm["MetricName"]] = alarm
    assert set(by_function) == {f"comptoir-{CI_STAGE}-{fn.name}" for fn in FUNCTIONS}
    for fn in FUNCTIONS:
        alarms = by_function[f"comptoir-{CI_STAGE}-{fn.name}"]
        assert set(alarms) == {"Errors", "Throttles", "Duration"}, fn.name
        for metric in ("Errors", "Throttles"):
            assert alarms[metric]["Statistic"] == "Sum"
            assert (alarms[metric]["ComparisonOperator"], alarms[metric]["Threshold"]) == (
                "GreaterThanThreshold",
                0,
            )
        duration = alarms["Duration"]
        assert duration["ExtendedStatistic"] == "p99"
        assert duration["Threshold"] == round(0.8 * fn.aws_timeout_s * 1000), fn.name  # in ms
        assert all(_notifies_the_topic(alarm) for alarm in alarms.values()), fn.name


def test_stage_alarms_notify_the_topic_and_its_optional_email(packaged: Packaged) -> None:
    resources = packaged.template["Resources"]
    alarms = _alarms(packaged)
    assert all(_notifies_the_topic(alarm) for alarm in alarms.values())
    assert resources["AlarmTopic"]["Type"] == "AWS::SNS::Topic"
    # No alarmEmail by default: the subscription is conditional on one.
    subscription = resources["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"]["Protocol"] == "email"
    assert packaged.template["Conditions"]["HasAlarmEmail"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]
    }
    assert packaged.template["Parameters"]["AlarmEmail"]["Default"] == ""
    assert subscription["Properties"]["Endpoint"] == {"Ref": "AlarmEmail"}

    dead_letters = alarms["DeadLetterQueueAlarm"]
    assert (dead_letters["Namespace"], dead_letters["MetricName"]) == (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
    )
    assert dead_letters["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["InboundDeadLetterQueue", "QueueName"]}}
    ]
    assert (dead_letters["ComparisonOperator"], dead_letters["Threshold"]) == (
        "GreaterThanThreshold",
        0,
    )

    def metrics(alarm: dict[str, Any]) -> dict[str, tuple[str, str, Any]]:
        return {
            m["Id"]: (
                m["MetricStat"]["Metric"]["Namespace"],
                m["MetricStat"]["Metric"]["MetricName"],
                m["MetricStat"]["Metric"]["Dimensions"][0]["Value"],
            )
            for m in alarm["Metrics"]
            if "MetricStat" in m
        }

    api = alarms["ApiServerErrorsAlarm"]
    assert metrics(api) == {
        "errors": ("AWS/ApiGateway", "5xx", {"Ref": "HttpApi"}),
        "requests": ("AWS/ApiGateway", "Count", {"Ref": "HttpApi"}),
    }
    (rate,) = (m for m in api["Metrics"] if m.get("ReturnData"))
    assert rate["Expression"] == "IF(requests >= 20, 100 * errors / requests, 0)"
    assert api["Threshold"] == 5

    table = alarms["TableThrottleAlarm"]
    assert metrics(table) == {
        "reads": ("AWS/DynamoDB", "ReadThrottleEvents", {"Ref": "Table"}),
        "writes": ("AWS/DynamoDB", "WriteThrottleEvents", {"Ref": "Table"}),
    }
    assert table["Threshold"] == 0


def test_logs_are_kept_30_days_and_tracing_is_optional(packaged: Packaged) -> None:
    log_groups = {
        group["Properties"]["LogGroupName"]: group["Properties"]
        for group in packaged.resources("AWS::Logs::LogGroup").values()
    }
    assert set(log_groups) == {f"/aws/lambda/comptoir-{CI_STAGE}-{fn.name}" for fn in FUNCTIONS}
    assert all(group["RetentionInDays"] == 30 for group in log_groups.values())
    # tracing: PassThrough by default (Lambda's own default, no traces); Active turns X-Ray on,
    # with its write policy on every role.
    assert packaged.template["Conditions"]["TracingActive"] == {
        "Fn::Equals": [{"Ref": "Tracing"}, "Active"]
    }
    assert packaged.template["Parameters"]["Tracing"]["Default"] == "PassThrough"
    for module, function in packaged.functions().items():
        assert function["Properties"].get("TracingConfig", {"Mode": "PassThrough"}) == {
            "Mode": "PassThrough"
        }, module
        role = packaged.template["Resources"][function["Properties"]["Role"]["Fn::GetAtt"][0]]
        managed = role["Properties"]["ManagedPolicyArns"]["Fn::If"]
        assert managed[0] == "TracingActive" and "AWSXRayDaemonWriteAccess" in json.dumps(managed)


def test_the_worker_concurrency_is_reserved_only_when_asked(packaged: Packaged) -> None:
    worker = packaged.functions()["worker"]["Properties"]
    assert worker["ReservedConcurrentExecutions"] == {
        "Fn::If": [
            "HasWorkerConcurrency",
            {"Ref": "WorkerReservedConcurrency"},
            {"Ref": "AWS::NoValue"},
        ]
    }
    assert packaged.template["Conditions"]["HasWorkerConcurrency"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "WorkerReservedConcurrency"}, 0]}]
    }
    assert packaged.template["Parameters"]["WorkerReservedConcurrency"]["Default"] == 0  # none
    others = [m for m, f in packaged.functions().items() if m != "worker"]
    assert all("ReservedConcurrentExecutions" not in packaged.functions()[m]["Properties"]
               for m in others)  # fmt: skip


def test_the_table(packaged: Packaged) -> None:
    table = packaged.template["Resources"]["Table"]
    props = table["Properties"]
    assert props["TableName"] == f"comptoir-{CI_STAGE}"
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["DeletionPolicy"] == "Delete"  # ci and dev; prod retains (test_stages)
    assert props["DeletionProtectionEnabled"] is False  # prod: True (test_stages)
    assert (
        env_of(packaged, "chat")["STORE_URL"] == f"dynamodb://comptoir-{CI_STAGE}?region=eu-west-1"
    )


def test_the_widget_bucket_is_private_behind_cloudfront(packaged: Packaged) -> None:
    resources = packaged.template["Resources"]
    bucket = resources["WidgetBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["CorsConfiguration"]["CorsRules"][0]["AllowedMethods"] == ["GET", "HEAD"]
    distribution = resources["WidgetDistribution"]["Properties"]["DistributionConfig"]
    origin = distribution["Origins"][0]
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": ["WidgetOriginAccessControl", "Id"]}
    assert distribution["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "redirect-to-https"
    # PriceClass_100 (North America, Europe) serves African shoppers from Europe.
    assert distribution["PriceClass"] == "PriceClass_200"
    statement = resources["WidgetBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert statement["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert statement["Action"] == "s3:GetObject"
    assert "AWS:SourceArn" in statement["Condition"]["StringEquals"]


_POLICY_DOCUMENTS = ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::S3::BucketPolicy")


def _statements(packaged: Packaged) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for logical_id, resource in packaged.template["Resources"].items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                found += [(logical_id, s) for s in policy["PolicyDocument"]["Statement"]]
        elif resource["Type"] in _POLICY_DOCUMENTS:
            found += [(logical_id, s) for s in props["PolicyDocument"]["Statement"]]
    return found


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_no_allow_statement_uses_a_wildcard(packaged: Packaged) -> None:
    statements = _statements(packaged)
    assert statements
    for owner, statement in statements:
        if statement["Effect"] == "Deny":
            # The TLS-only guards (deployment and widget buckets) deny everything over http.
            condition = statement["Condition"]["Bool"]["aws:SecureTransport"]
            assert str(condition).lower() == "false", owner
            continue
        for action in _as_list(statement["Action"]):
            assert action != "*" and not action.endswith(":*"), (owner, action)
        for resource in _as_list(statement["Resource"]):
            assert resource != "*", owner
            assert "*" not in json.dumps(resource).replace(":*", "").replace("/*", ""), owner
        assert statement.get("Principal") != "*", owner


def test_each_function_has_its_own_least_privilege_role(packaged: Packaged) -> None:
    resources = packaged.template["Resources"]
    assert "IamRoleLambdaExecution" not in resources  # no shared role
    roles = {}
    for module, function in packaged.functions().items():
        role = function["Properties"]["Role"]["Fn::GetAtt"][0]
        roles[module] = role
        grants: dict[str, set[str]] = {}
        for statement in (
            s
            for p in resources[role]["Properties"]["Policies"]
            for s in p["PolicyDocument"]["Statement"]
        ):
            actions = set(_as_list(statement["Action"]))
            resource = statement["Resource"]
            if actions == LOGS:
                # Only its own log group.
                assert (
                    f"log-group:/aws/lambda/comptoir-{CI_STAGE}-{module}:*" in resource["Fn::Sub"]
                )
                continue
            target = resource_target(resource)
            grants[target] = grants.get(target, set()) | actions
        listed = next(fn for fn in FUNCTIONS if fn.name == module)
        assert grants == expected_grants(listed), module
    assert len(set(roles.values())) == len(roles)


def test_secrets_are_references_never_values(packaged: Packaged) -> None:
    text = json.dumps(packaged.template)
    for module, function in packaged.functions().items():
        variables = function["Properties"]["Environment"]["Variables"]
        for name, value in variables.items():
            if name in SECRET_NAMES:
                assert value == (
                    f"{{{{resolve:secretsmanager:comptoir/{CI_STAGE}:SecretString:{name}}}}}"
                ), (module, name)
    assert "health" in packaged.functions()
    assert not set(env_of(packaged, "health")) & set(SECRET_NAMES)
    # Each secret appears only as a reference, wherever it is.
    for name in SECRET_NAMES:
        for match in re.finditer(rf'"{name}": "([^"]*)"', text):
            assert match.group(1).startswith("{{resolve:secretsmanager:"), name


def test_each_function_has_exactly_its_listed_secrets_and_settings(packaged: Packaged) -> None:
    # The Google Cloud deploy reads the same list (tests/deploy/test_gcp_dry_run.py).
    state = json.loads((packaged.directory / "serverless-state.json").read_text())
    everyone = set(state["service"]["provider"]["environment"])
    for fn in FUNCTIONS:
        own = set(env_of(packaged, fn.name)) - everyone
        assert own & set(SECRET_NAMES) == set(fn.secrets), fn.name
        assert own - set(SECRET_NAMES) == set(fn.settings) | AWS_ONLY_VARIABLES.get(fn.name, set())


def test_environment_names_and_values_are_settings(packaged: Packaged) -> None:
    aliases = {field.alias for field in Settings.model_fields.values()}
    for module in packaged.functions():
        variables = env_of(packaged, module)
        assert set(variables) <= aliases, (module, set(variables) - aliases)
        # PUBLIC_BASE_URL is the HTTP API's URL, known once deployed.
        assert variables["PUBLIC_BASE_URL"] == {
            "Fn::Sub": "https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}"
        }
        literal = {k: v for k, v in variables.items() if isinstance(v, str)}
        literal = {k: ("" if v.startswith("{{resolve:") else v) for k, v in literal.items()}
        Settings.from_env(literal, env_file=None)  # raises on a malformed value


def test_environments_fit_lambdas_4_kb_once_secrets_are_resolved(packaged: Packaged) -> None:
    for module in packaged.functions():
        variables = env_of(packaged, module)
        # A secret's {{resolve:...}} reference counts as the value it resolves to: at most
        # ~250 characters (a WhatsApp system-user token).
        plain = sum(
            len(k) + (256 if k in SECRET_NAMES else len(v))
            for k, v in variables.items()
            if isinstance(v, str)
        )
        # A Fn::Sub resolves to its template with ids and domains in place of ${...}: at most
        # 64 more characters each.
        plain += sum(len(k) + len(v["Fn::Sub"]) + 64 for k, v in variables.items()
                     if isinstance(v, dict) and "Fn::Sub" in v)  # fmt: skip
        assert plain + 200 < 4096, module


def test_each_package_holds_only_runtime_code(packaged: Packaged) -> None:
    sizes = {}
    for module in packaged.functions():
        archive = packaged.zips[module]
        names = zipfile.ZipFile(archive).namelist()
        sizes[module] = archive.stat().st_size
        assert f"functions/{module}.py" in names
        assert "functions/__init__.py" in names and "functions/_path.py" in names
        other_functions = [
            n for n in names if n.startswith("functions/") and n not in
            (f"functions/{module}.py", "functions/__init__.py", "functions/_path.py")
        ]  # fmt: skip
        assert not other_functions, module
        for name in names:
            assert name.startswith(("functions/", "shared/")), name
            assert "__pycache__" not in name and not name.endswith(".pyc"), name
            assert not name.startswith("shared/demo/"), name
        assert "shared/prompts/sales.web.j2" in names  # templates ship with the code
        assert sizes[module] < 1_000_000
    print(
        "\npackage sizes (zipped): " + ", ".join(f"{m} {s / 1024:.0f} KB" for m, s in sizes.items())
    )


def test_cfn_lint_passes(packaged: Packaged) -> None:
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    if not cfn_lint.is_file():
        pytest.fail("cfn-lint is missing: pip install -r requirements-dev.txt")
    template = packaged.directory / "cloudformation-template-update-stack.json"
    started = time.perf_counter()
    result = subprocess.run(
        [str(cfn_lint), "--format", "parseable", str(template)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    print(f"\ncfn-lint: {time.perf_counter() - started:.1f} s")
    findings = [line for line in result.stdout.splitlines() if line.strip()]
    # parseable: path:line:col:line:col:RULE:message
    rules = {line.split(":")[5] for line in findings}
    errors = [line for line in findings if line.split(":")[5].startswith("E")]
    assert not errors, "\n".join(errors)
    assert rules <= IGNORED_CHECKS, "\n".join(
        line for line in findings if line.split(":")[5] not in IGNORED_CHECKS
    )
    assert result.returncode in (0, 4) and not result.stderr.strip(), result.stderr


def test_stages_have_their_own_names_and_prod_keeps_its_data(
    packaged: Packaged, cloudformation_stub: Any
) -> None:
    # `osls print` resolves the configuration of a stage without packaging it.
    result = run_osls(
        ["print", "--stage", "prod", "--format", "json"], osls_env(cloudformation_stub.url)
    )
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout[result.stdout.index("{") :])
    resources = config["resources"]["Resources"]
    assert resources["Table"]["Properties"]["TableName"] == "comptoir-prod"
    assert resources["Table"]["DeletionPolicy"] == "Retain"
    assert resources["Table"]["Properties"]["DeletionProtectionEnabled"] is True
    assert resources["WidgetBucket"]["DeletionPolicy"] == "Retain"
    assert resources["DataBucket"]["DeletionPolicy"] == "Retain"
    assert resources["InboundQueue"]["Properties"]["QueueName"] == "comptoir-prod-inbound.fifo"
    assert (
        config["provider"]["environment"]["STORE_URL"]
        == "dynamodb://comptoir-prod?region=eu-west-1"
    )
    assert config["functions"]["chat"]["environment"]["LLM_API_KEY"] == (
        "{{resolve:secretsmanager:comptoir/prod:SecretString:LLM_API_KEY}}"
    )
    assert config["provider"]["runtime"] == "python3.12"


def test_the_layer_is_the_built_one(packaged: Packaged, layer_report: dict[str, Any]) -> None:
    layer = packaged.template["Resources"]["DepsLambdaLayer"]["Properties"]
    assert layer["LayerName"] == f"comptoir-{CI_STAGE}-deps"
    assert layer["CompatibleRuntimes"] == ["python3.12"]
    assert layer["CompatibleArchitectures"] == ["arm64"]
    assert layer["Content"]["S3Key"].endswith("/layer.zip")
    state = json.loads((packaged.directory / "serverless-state.json").read_text())
    config = state["service"]["initialServerlessConfig"]["layers"]["deps"]
    assert config["package"]["artifact"] == "infra/aws/.build/layer.zip"


def test_a_stage_turns_on_alarm_email_tracing_and_worker_concurrency_by_params(
    packaged: Packaged, cloudformation_stub: Any
) -> None:
    params = ["alarmEmail=ops@shop.example", "tracing=Active", "workerReservedConcurrency=5"]
    result = run_osls(
        ["print", "--stage", "prod", "--format", "json", *(f"--param={p}" for p in params)],
        osls_env(cloudformation_stub.url),
    )
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout[result.stdout.index("{") :])
    stack_parameters = {
        name: parameter["Default"] for name, parameter in config["resources"]["Parameters"].items()
    }
    assert stack_parameters == {
        "AlarmEmail": "ops@shop.example",
        "Tracing": "Active",
        "WorkerReservedConcurrency": "5",
    }
    assert config["provider"]["tracing"] == {"lambda": "Active"}  # TracingConfig: Active
    assert config["provider"]["logRetentionInDays"] == 30


# AWS-managed CloudFront policies, by their fixed ids.
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
ALL_VIEWER_EXCEPT_HOST_HEADER = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
HTTP_API_DOMAIN = "${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}"


def test_the_console_and_its_api_share_the_widget_distribution(packaged: Packaged) -> None:
    """SameSite=Strict cookies and the CSRF check need the console's files and its API on one
    origin: the distribution serves admin/ from the bucket and /admin/api/* from the API."""
    resources = packaged.template["Resources"]
    config = resources["WidgetDistribution"]["Properties"]["DistributionConfig"]
    origins = {origin["Id"]: origin for origin in config["Origins"]}
    assert origins["api"]["DomainName"] == {"Fn::Sub": HTTP_API_DOMAIN}
    assert origins["api"]["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
    behaviours = [(b["PathPattern"], b) for b in config["CacheBehaviors"]]
    # First match wins: the API's pattern must come before the console's.
    assert [pattern for pattern, _ in behaviours] == ["/admin/api/*", "/admin*"]
    api, console = behaviours[0][1], behaviours[1][1]
    assert api["TargetOriginId"] == "api"
    assert (api["CachePolicyId"], api["OriginRequestPolicyId"]) == (
        CACHING_DISABLED,
        ALL_VIEWER_EXCEPT_HOST_HEADER,
    )
    assert {"GET", "POST"} <= set(api["AllowedMethods"])
    assert api["ViewerProtocolPolicy"] == "https-only"  # a redirected POST would become a GET
    assert console["TargetOriginId"] == "widget" and console["CachePolicyId"] == CACHING_OPTIMIZED
    (association,) = console["FunctionAssociations"]
    assert association["EventType"] == "viewer-request"
    assert association["FunctionARN"] == {
        "Fn::GetAtt": ["ConsoleIndexFunction", "FunctionMetadata.FunctionARN"]
    }
    # The bucket lets CloudFront read every object (admin/ as widget/).
    statement = resources["WidgetBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert statement["Resource"] == {"Fn::Sub": "${WidgetBucket.Arn}/*"}

    console_url = {"Fn::Sub": "https://${WidgetDistribution.DomainName}/admin/"}
    assert packaged.template["Outputs"]["ConsoleUrl"]["Value"] == console_url
    for module in packaged.functions():
        assert env_of(packaged, module)["ADMIN_URL"] == console_url, module


def _run_cloudfront_function(code: str, uri: str, query: dict[str, str]) -> dict[str, Any]:
    """The function's handler, run by node on a viewer-request event."""
    event = {
        "request": {
            "uri": uri,
            "method": "GET",
            "querystring": {name: {"value": value} for name, value in query.items()},
            "headers": {},
        }
    }
    script = f"{code}\nprocess.stdout.write(JSON.stringify(handler({json.dumps(event)})));"
    result = subprocess.run(
        ["node", "-e", script], capture_output=True, text=True, timeout=30, check=True
    )
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


def test_the_console_index_function(packaged: Packaged) -> None:
    function = packaged.template["Resources"]["ConsoleIndexFunction"]["Properties"]
    assert function["FunctionConfig"]["Runtime"] == "cloudfront-js-2.0"
    assert function["AutoPublish"] is True
    code = function["FunctionCode"]

    def uri(path: str) -> str:
        return str(_run_cloudfront_function(code, path, {})["uri"])

    assert uri("/admin/") == "/admin/index.html"
    assert uri("/admin/inbox") == "/admin/index.html"  # the console's own pages
    assert uri("/admin/app.3f9a1c2b.js") == "/admin/app.3f9a1c2b.js"
    assert uri("/admin/index.html") == "/admin/index.html"
    # /admin: a redirect, so that relative links resolve under /admin/; the query is kept.
    redirect = _run_cloudfront_function(code, "/admin", {"link": "abc"})
    assert redirect["statusCode"] == 301
    assert redirect["headers"]["location"]["value"] == "/admin/?link=abc"
    assert _run_cloudfront_function(code, "/admin", {})["headers"]["location"]["value"] == (
        "/admin/"
    )


def test_the_inbound_queue_is_fifo_high_throughput(packaged: Packaged) -> None:
    """The README's Scaling section counts on it: quotas per message group (a conversation),
    not 300 sends/s for the whole queue."""
    queue = packaged.template["Resources"]["InboundQueue"]["Properties"]
    assert queue["FifoQueue"] is True
    assert queue["DeduplicationScope"] == "messageGroup"
    assert queue["FifoThroughputLimit"] == "perMessageGroupId"
    assert "high-throughput" in (ROOT / "README.md").read_text()


def test_catalogue_snapshots_go_to_the_private_data_bucket(
    packaged: Packaged, tmp_path: Path
) -> None:
    resources = packaged.template["Resources"]
    bucket = resources["DataBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["BucketName"] == {
        "Fn::Sub": f"comptoir-{CI_STAGE}-data-${{AWS::AccountId}}-${{AWS::Region}}"
    }
    assert resources["DataBucket"]["DeletionPolicy"] == "Delete"  # prod: Retain (dataRetention)
    distribution = resources["WidgetDistribution"]["Properties"]["DistributionConfig"]
    assert "DataBucket" not in json.dumps(distribution)  # never served
    assert packaged.template["Outputs"]["DataBucketName"]["Value"] == {"Ref": "DataBucket"}
    for module in packaged.functions():
        assert env_of(packaged, module)["CATALOG_BLOB_URL"] == {
            "Fn::Sub": "s3://${DataBucket}?region=${AWS::Region}"
        }, module

    # The roles allow catalog/ only: every key the snapshots write or delete is under it.
    from shared.blob import open_blob
    from shared.catalog.retrieval import CatalogData
    from shared.catalog.snapshot import CatalogSnapshots
    from shared.store import open_store

    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    snapshots = CatalogSnapshots(store, str(tmp_path / "blobs"))
    for version in (1, 2):
        snapshots.save("maison-teranga", version, CatalogData([], [], []))
    keys = open_blob(str(tmp_path / "blobs")).list()
    assert len(keys) == 1 and keys[0].startswith("catalog/")  # the first one was deleted


def test_voice_notes_go_to_the_data_bucket_and_expire_after_30_days(packaged: Packaged) -> None:
    from shared.channels import voice_notes

    bucket = packaged.template["Resources"]["DataBucket"]["Properties"]
    rules = bucket["LifecycleConfiguration"]["Rules"]
    assert [(r["Prefix"], r["ExpirationInDays"], r["Status"]) for r in rules] == [
        ("voice-notes/", 30, "Enabled")
    ]
    assert f"{voice_notes.KEY_PREFIX}/" == "voice-notes/"  # the keys the worker may put
    for module in packaged.functions():
        assert env_of(packaged, module)["MEDIA_BLOB_URL"] == {
            "Fn::Sub": "s3://${DataBucket}?region=${AWS::Region}"
        }, module
    assert env_of(packaged, "worker")["TTS_PROVIDER"] == "offline"  # a stage says openai
