"""`make deploy-gcp`'s dry run: gcloud cannot run here, so the printed sequence is what is
checked, and the source folders it builds are run with functions-framework."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from functions import FUNCTIONS, Schedule
from shared.tasks import TASKS_HEADER
from tests.deploy.conftest import ROOT

PROJECT, REGION, STAGE = "maison-teranga-42", "europe-west1", "prod"
BASE = f"https://{REGION}-{PROJECT}.cloudfunctions.net"
P = f"--project={PROJECT}"
ALERT_EMAIL = "ops@maison-teranga.sn"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gcp_deploy", ROOT / "infra" / "gcp" / "deploy.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


gcp = _load()


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gcp-build")


# The admin function's deterministic Cloud Run URL: paths as the browser sends them.
CONSOLE_URL = f"https://comptoir-{STAGE}-admin-123456789012.{REGION}.run.app/admin/"


@pytest.fixture(scope="module")
def console_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A built console (web/dist/admin is another build's output)."""
    folder = tmp_path_factory.mktemp("console")
    (folder / "index.html").write_text("<!doctype html><title>Comptoir console</title>")
    (folder / "console.89abcdef01.js").write_text("/* console */")
    return folder


@pytest.fixture(scope="module")
def dry_run(build_dir: Path, console_dir: Path) -> list[str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = gcp.main(
            ["--project", PROJECT, "--region", REGION, "--stage", STAGE, "--dry-run",
             "--project-number", "123456789012", "--build-dir", str(build_dir),
             "--console-dir", str(console_dir),
             "--allowed-origins", "https://maison-teranga.sn,https://maison-teranga.myshopify.com",
             "--default-shop", "maison-teranga", "--whatsapp-phone-number-id", "106540352242922",
             "--alert-email", ALERT_EMAIL]
        )  # fmt: skip
    assert code == 0
    return out.getvalue().splitlines()


def commands(lines: list[str]) -> list[list[str]]:
    return [shlex.split(line) for line in lines if line.startswith("gcloud ")]


def find(lines: list[str], *prefix: str) -> list[list[str]]:
    return [c for c in commands(lines) if c[: len(prefix)] == list(prefix)]


def one(lines: list[str], *prefix: str) -> list[str]:
    found = find(lines, *prefix)
    assert len(found) == 1, (prefix, found)
    return found[0]


def flag(command: list[str], name: str) -> str:
    values = [a.split("=", 1)[1] for a in command if a.startswith(f"{name}=")]
    assert len(values) == 1, (name, command)
    return values[0]


def test_nothing_is_run_and_every_command_names_the_project(dry_run: list[str]) -> None:
    assert dry_run[0].startswith("# dry run")
    for command in commands(dry_run):
        assert P in command or PROJECT in command, command


def test_each_function_is_deployed_gen2_with_its_target_and_account(dry_run: list[str]) -> None:
    deployed = find(dry_run, "gcloud", "functions", "deploy")
    assert [c[3] for c in deployed] == [f"comptoir-{STAGE}-{m.replace('_', '-')}" for m in
                                        [f.name for f in FUNCTIONS]]  # fmt: skip
    assert gcp.FUNCTIONS is FUNCTIONS  # the one list (tests/test_functions_list.py: all modules)
    accounts = set()
    for command, fn in zip(deployed, FUNCTIONS, strict=True):
        assert "--gen2" in command and "--trigger-http" in command
        assert flag(command, "--runtime") == "python312"
        assert flag(command, "--region") == REGION
        assert flag(command, "--entry-point") == fn.name
        assert Path(flag(command, "--source")).name == fn.name
        assert flag(command, "--memory") == {1024: "1Gi", 512: "512Mi", 256: "256Mi"}[fn.memory_mb]
        assert flag(command, "--timeout") == f"{fn.gcp_timeout_s}s"
        assert flag(command, "--max-instances") == str(fn.gcp_max_instances)
        accounts.add(flag(command, "--service-account"))
        public = fn.name != "worker"
        assert ("--allow-unauthenticated" in command) is public
        assert ("--no-allow-unauthenticated" in command) is not public
    assert len(accounts) == len(FUNCTIONS)  # one service account each


def test_secrets_are_mounted_from_secret_manager(dry_run: list[str]) -> None:
    for fn, command in zip(FUNCTIONS, find(dry_run, "gcloud", "functions", "deploy"), strict=True):
        if not fn.secrets:
            assert "--clear-secrets" in command
            continue
        mounts = dict(item.split("=", 1) for item in flag(command, "--set-secrets").split(","))
        assert mounts == {n: f"comptoir-{STAGE}-{n}:latest" for n in fn.secrets}
        for name in fn.secrets:  # and only this function's account may read them
            grants = [
                c for c in find(dry_run, "gcloud", "secrets", "add-iam-policy-binding")
                if c[3] == f"comptoir-{STAGE}-{name}"
            ]  # fmt: skip
            members = {flag(c, "--member") for c in grants}
            owners = {
                f"serviceAccount:{gcp_account(f.short)}" for f in FUNCTIONS if name in f.secrets
            }
            assert members == owners, name
            assert {flag(c, "--role") for c in grants} == {"roles/secretmanager.secretAccessor"}
    created = {c[3] for c in find(dry_run, "gcloud", "secrets", "create")}
    assert created == {f"comptoir-{STAGE}-{n}" for f in FUNCTIONS for n in f.secrets}


def gcp_account(short: str) -> str:
    return f"comptoir-{STAGE}-{short}@{PROJECT}.iam.gserviceaccount.com"


def test_the_queue_topic_and_the_worker_push_subscription(dry_run: list[str]) -> None:
    topics = {c[4] for c in find(dry_run, "gcloud", "pubsub", "topics", "create")}
    assert topics == {f"comptoir-{STAGE}-inbound", f"comptoir-{STAGE}-inbound-dead"}
    subscription = next(
        c for c in find(dry_run, "gcloud", "pubsub", "subscriptions", "create")
        if c[4] == f"comptoir-{STAGE}-inbound-worker"
    )  # fmt: skip
    worker_url = f"{BASE}/comptoir-{STAGE}-worker"
    assert flag(subscription, "--topic") == f"comptoir-{STAGE}-inbound"
    assert "--enable-message-ordering" in subscription
    assert flag(subscription, "--push-endpoint") == worker_url
    assert flag(subscription, "--push-auth-service-account") == gcp_account("push")
    assert flag(subscription, "--push-auth-token-audience") == worker_url
    assert flag(subscription, "--dead-letter-topic") == f"comptoir-{STAGE}-inbound-dead"
    attempts = int(flag(subscription, "--max-delivery-attempts"))
    assert 5 <= attempts <= 100 and attempts == 5 + 1  # WORKER_MAX_ATTEMPTS + 1
    worker = next(f for f in FUNCTIONS if f.name == "worker")
    assert int(flag(subscription, "--ack-deadline")) > worker.gcp_timeout_s
    assert flag(subscription, "--expiration-period") == "never"
    # Only the push identity may call the worker; Pub/Sub's agent may dead-letter.
    invoker = one(dry_run, "gcloud", "functions", "add-invoker-policy-binding")
    assert invoker[3] == f"comptoir-{STAGE}-worker"
    assert flag(invoker, "--member") == f"serviceAccount:{gcp_account('push')}"
    agent = "serviceAccount:service-123456789012@gcp-sa-pubsub.iam.gserviceaccount.com"
    dead = [c for c in find(dry_run, "gcloud", "pubsub", "topics", "add-iam-policy-binding")
            if c[4] == f"comptoir-{STAGE}-inbound-dead"]  # fmt: skip
    assert [flag(c, "--member") for c in dead] == [agent]
    sub_grant = one(dry_run, "gcloud", "pubsub", "subscriptions", "add-iam-policy-binding")
    assert flag(sub_grant, "--member") == agent
    # The dead letters are kept by a subscription of their own.
    keep = next(c for c in find(dry_run, "gcloud", "pubsub", "subscriptions", "create")
                if c[4] == f"comptoir-{STAGE}-inbound-dead-keep")  # fmt: skip
    assert flag(keep, "--topic") == f"comptoir-{STAGE}-inbound-dead"
    # Who publishes: the chat (widget handoffs), the webhooks, the tasks, the worker and the
    # console's API (a campaign launch, a job run, a reply's channel work), nobody else.
    publishers = {
        flag(c, "--member")
        for c in find(dry_run, "gcloud", "pubsub", "topics", "add-iam-policy-binding")
        if c[4] == f"comptoir-{STAGE}-inbound"
    }
    assert publishers == {
        f"serviceAccount:{gcp_account(s)}"
        for s in (
            "chat",
            "whatsapp",
            "telegram",
            "nextcloud",
            "email",
            "messenger",
            "payments",
            "tasks",
            "worker",
            "admin",
        )
    }
    assert publishers == {
        f"serviceAccount:{gcp_account(f.short)}" for f in FUNCTIONS if f.publishes
    }


def test_firestore_database_indexes_and_ttl(dry_run: list[str]) -> None:
    spec = json.loads((ROOT / "infra" / "gcp" / "firestore.indexes.json").read_text())
    create = one(dry_run, "gcloud", "firestore", "databases", "create")
    assert flag(create, "--type") == "firestore-native"
    indexes = find(dry_run, "gcloud", "firestore", "indexes", "composite", "create")
    assert len(indexes) == len(spec["indexes"]) >= 2
    assert {flag(c, "--collection-group") for c in indexes} == {"leads", "deadletters"}
    ttls = find(dry_run, "gcloud", "firestore", "fields", "ttls", "update")
    expiring = {o["collectionGroup"] for o in spec["fieldOverrides"] if o.get("ttl")}
    assert {flag(c, "--collection-group") for c in ttls} == expiring
    # The console's event log and sign-in records expire as on DynamoDB (its table's TTL).
    assert {"idempotency", "ratelimits", "events", "admin_sessions", "admin_links"} <= expiring
    assert all(c[5] == "ttl" and "--enable-ttl" in c for c in ttls)
    roles = {
        flag(c, "--member").split(":")[1]: flag(c, "--role")
        for c in find(dry_run, "gcloud", "projects", "add-iam-policy-binding")
    }
    assert roles[gcp_account("health")] == "roles/datastore.user"  # the heartbeat write
    assert roles[gcp_account("chat")] == "roles/datastore.user"
    assert "roles/owner" not in roles.values() and "roles/editor" not in roles.values()


def test_each_schedule_calls_its_function_with_the_tasks_secret(dry_run: list[str]) -> None:
    jobs = find(dry_run, "gcloud", "scheduler", "jobs", "create", "http")
    listed = [(fn, s) for fn in FUNCTIONS for s in fn.schedules]
    assert listed and len(jobs) == len(listed)
    for (fn, schedule), job in zip(listed, jobs, strict=True):
        assert fn.public and "TASKS_SECRET" in fn.secrets
        assert job[5] == f"comptoir-{STAGE}-{schedule.task}"
        assert flag(job, "--time-zone") == schedule.time_zone
        assert flag(job, "--schedule") == schedule.cron
        # The function's own URL is its mount: /tick is the route POST /tasks/{name}.
        assert flag(job, "--uri") == f"{BASE}/comptoir-{STAGE}-{fn.name}/{schedule.task}"
        # The secret is read from Secret Manager at deploy time and never printed.
        assert flag(job, "--headers") == f"Content-Type=application/json,{TASKS_HEADER}=***"
        assert json.loads(flag(job, "--message-body")) == {"task": schedule.task}
    reads = [line for line in dry_run if "secrets versions access latest" in line]
    assert reads and all(f"--secret=comptoir-{STAGE}-TASKS_SECRET" in line for line in reads)
    # Public functions need no invoker binding, and no scheduler identity is created.
    tasks_name = f"comptoir-{STAGE}-tasks"
    assert not find(dry_run, "gcloud", "functions", "add-invoker-policy-binding", tasks_name)
    assert gcp_account("scheduler") not in "\n".join(dry_run)


def test_the_job_really_carries_the_secret_and_the_header_is_the_functions() -> None:
    config = gcp.Config(PROJECT, REGION, STAGE, REGION, "1", 5)
    tasks = next(f for f in FUNCTIONS if f.name == "tasks")
    tick = Schedule("tick", "*/5 * * * *")
    job = gcp.schedule_commands(config, tasks, tick, "s3cret-value-0123")
    assert flag(job, "--headers").endswith(f"{TASKS_HEADER}=s3cret-value-0123")
    assert gcp.TASKS_HEADER == TASKS_HEADER


def test_the_widget_bucket(dry_run: list[str]) -> None:
    bucket = f"gs://comptoir-{STAGE}-widget-{PROJECT}"
    create = one(dry_run, "gcloud", "storage", "buckets", "create", bucket)
    assert "--uniform-bucket-level-access" in create
    public = one(dry_run, "gcloud", "storage", "buckets", "add-iam-policy-binding", bucket)
    assert (flag(public, "--member"), flag(public, "--role")) == (
        "allUsers",
        "roles/storage.objectViewer",  # read objects, not list them
    )
    cors = one(dry_run, "gcloud", "storage", "buckets", "update", bucket)
    assert json.loads((ROOT / flag(cors, "--cors-file")).read_text())[0]["method"] == [
        "GET",
        "HEAD",
    ]
    assert f"python -m shared publish-web --to {bucket} --prefix widget/" in dry_run


def test_the_next_steps(dry_run: list[str]) -> None:
    text = "\n".join(dry_run)
    loader = f"https://storage.googleapis.com/comptoir-{STAGE}-widget-{PROJECT}/widget/widget.js"
    assert f'<script src="{loader}" data-api="{BASE}/comptoir-{STAGE}-chat"' in text
    assert f"Callback URL {BASE}/comptoir-{STAGE}-webhook-whatsapp" in text
    assert f"telegram-webhook --url {BASE}/comptoir-{STAGE}-webhook-telegram" in text


def test_env_files(build_dir: Path) -> None:
    env = dict(
        line.split(": ", 1) for line in (build_dir / "worker.env.yaml").read_text().splitlines()
    )
    values = {k: json.loads(v) for k, v in env.items()}
    assert values["STORE_URL"] == f"firestore://{PROJECT}?database=(default)"
    assert values["QUEUE_URL"] == f"pubsub://{PROJECT}/comptoir-{STAGE}-inbound"
    assert (
        values["ALLOWED_ORIGINS"]
        == "https://maison-teranga.sn,https://maison-teranga.myshopify.com"
    )
    assert values["WHATSAPP_PHONE_NUMBER_ID"] == "106540352242922"
    assert values["ADMIN_URL"] == CONSOLE_URL
    assert values["CATALOG_BLOB_URL"] == f"gs://comptoir-{STAGE}-data-{PROJECT}"
    assert values["MEDIA_BLOB_URL"] == values["CATALOG_BLOB_URL"]  # voice notes: voice-notes/
    assert not set(values) & {n for f in FUNCTIONS for n in f.secrets}  # secrets: mounted


def test_invalid_names_are_refused_before_anything_runs() -> None:
    with pytest.raises(SystemExit, match="--stage"):
        gcp.Config(PROJECT, REGION, "Staging-Long", REGION, "1", 5).validate()
    with pytest.raises(SystemExit, match="project id"):
        gcp.Config("Bad_Project", REGION, STAGE, REGION, "1", 5).validate()


def test_the_built_sources_run_under_functions_framework(build_dir: Path, tmp_path: Path) -> None:
    """Each source folder imports its target from main.py, alone (not the repo)."""
    script = """
import json, sys
from functions_framework import create_app
target = sys.argv[1]
client = create_app(target, "main.py").test_client()
if target == "health":
    r = client.get("/")
elif target == "chat":
    r = client.post("/chat", json={"message": "Bonjour"})
else:
    push = {"message": {"data": "bm90IGEgd29yayBpdGVt", "messageId": "1"}, "deliveryAttempt": 1}
    r = client.post("/", json=push)
print(r.status_code)
"""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update({"STORE_URL": f"sqlite:///{tmp_path / 'gcf.db'}", "QUEUE_URL": "inprocess://"})
    statuses = {}
    for target in ("health", "chat", "worker"):
        folder = build_dir / target
        assert (folder / "requirements.txt").read_text().count("boto3") == 0
        result = subprocess.run(
            [sys.executable, "-c", script, target],
            cwd=folder, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-2000:]
        statuses[target] = int(result.stdout.strip().splitlines()[-1])
    # health: the store answers; chat: no shop seeded (404 is the function's own answer);
    # worker: an unreadable body is kept as a dead letter and acknowledged.
    assert statuses == {"health": 200, "chat": 404, "worker": 204}


BUILD_ACCOUNT = gcp_account("build")


def test_functions_are_built_by_an_account_of_their_own_with_the_documented_roles(
    dry_run: list[str],
) -> None:
    """Projects created since mid-2024 build with the Compute Engine default account, which may
    lack the rights: every deploy names the stage's build account, granted what Cloud Build
    needs (logs, Artifact Registry, the uploaded source) before the first function deploys."""
    created = [c[4] for c in find(dry_run, "gcloud", "iam", "service-accounts", "create")]
    assert f"comptoir-{STAGE}-build" in created
    grants = [
        c for c in find(dry_run, "gcloud", "projects", "add-iam-policy-binding")
        if flag(c, "--member") == f"serviceAccount:{BUILD_ACCOUNT}"
    ]  # fmt: skip
    assert {flag(c, "--role") for c in grants} == {
        "roles/logging.logWriter", "roles/artifactregistry.writer", "roles/storage.objectAdmin"
    }  # fmt: skip
    deploys = find(dry_run, "gcloud", "functions", "deploy")
    assert len(deploys) == len(FUNCTIONS)
    for command in deploys:
        assert flag(command, "--build-service-account") == (
            f"projects/{PROJECT}/serviceAccounts/{BUILD_ACCOUNT}"
        )
    listed = commands(dry_run)
    assert max(listed.index(c) for c in grants) < listed.index(deploys[0])


def test_the_dry_run_checks_each_secret_has_a_version_before_the_functions(
    dry_run: list[str],
) -> None:
    first_deploy = next(i for i, line in enumerate(dry_run) if "functions deploy" in line)
    checks = {
        shlex.split(line.removeprefix("# check: "))[4]: i
        for i, line in enumerate(dry_run)
        if line.startswith("# check: gcloud secrets versions list")
    }
    assert set(checks) == {f"comptoir-{STAGE}-{n}" for f in FUNCTIONS for n in f.secrets}
    assert max(checks.values()) < first_deploy
    check = next(line for line in dry_run if line.startswith("# check: gcloud secrets versions"))
    assert "--limit=1" in check and "'--format=value(name)'" in check


def test_what_a_deploy_cannot_run_without() -> None:
    def needed(**settings: str) -> list[tuple[str, ...]]:
        return list(gcp.needed_secrets(gcp.Config(PROJECT, REGION, STAGE, REGION, "1", 5,
                                                  settings=settings)))  # fmt: skip

    # The console signs its sessions with ADMIN_SESSION_SECRET: unset, it answers 503.
    base = [("TASKS_SECRET",), ("ADMIN_SESSION_SECRET",)]
    assert needed(LLM_PROVIDER="offline") == base
    assert needed(LLM_PROVIDER="ollama") == base  # a local model: no key
    assert needed(LLM_PROVIDER="mistral", WHATSAPP_PHONE_NUMBER_ID="1065") == [
        *base, ("MISTRAL_API_KEY", "LLM_API_KEY"), ("WHATSAPP_VERIFY_TOKEN",),
        ("WHATSAPP_APP_SECRET",), ("WHATSAPP_ACCESS_TOKEN",),
    ]  # fmt: skip


# A stand-in for gcloud on PATH: it logs each call, keeps secret values in a folder, and finds
# no resource (a first deploy: every create runs) unless FAKE_GCLOUD_LISTED is set, when every
# other listing finds one.
FAKE_GCLOUD = """\
import json, os, pathlib, sys
args = sys.argv[1:]
with open(os.environ["FAKE_GCLOUD_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
values = pathlib.Path(os.environ["FAKE_GCLOUD_SECRETS"])
if args[:3] == ["secrets", "versions", "add"]:
    (values / args[3]).write_bytes(sys.stdin.buffer.read())
elif args[:3] == ["secrets", "versions", "list"]:
    if (values / args[3]).exists():
        print(f"projects/1/secrets/{args[3]}/versions/1")
elif args[:3] == ["secrets", "versions", "access"]:
    secret = next(a.split("=", 1)[1] for a in args if a.startswith("--secret="))
    sys.stdout.write((values / secret).read_text())
elif "describe" in args:
    sys.exit(1)
elif "list" in args and os.environ.get("FAKE_GCLOUD_LISTED"):
    print("projects/1/found/1")
"""


def fake_gcloud(tmp_path: Path) -> tuple[dict[str, str], Path, Path]:
    """The environment that puts the fake first on PATH, its secrets folder and its log."""
    bin_dir, values, log = tmp_path / "bin", tmp_path / "values", tmp_path / "gcloud.log"
    bin_dir.mkdir()
    values.mkdir()
    (bin_dir / "gcloud").write_text(f"#!{sys.executable}\n{FAKE_GCLOUD}")
    (bin_dir / "gcloud").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "FAKE_GCLOUD_LOG": str(log), "FAKE_GCLOUD_SECRETS": str(values)}  # fmt: skip
    return env, values, log


def test_a_first_deploy_stops_before_the_functions_and_says_exactly_what_to_run(
    tmp_path: Path,
) -> None:
    """No secret has a value on a first deploy: the script names the commands that add the
    ones it needs and how to deploy again; running them, then that, deploys."""
    env, values, log = fake_gcloud(tmp_path)
    passed = [
        "--llm-provider",
        "openai",
        "--whatsapp-phone-number-id",
        "106540352242922",
        "--skip-web",
        "--project-number",
        "123",
        "--build-dir",
        str(tmp_path / "build"),
    ]
    argv = [sys.executable, "infra/gcp/deploy.py", "--project", PROJECT, "--region", REGION,
            "--stage", STAGE, *passed]  # fmt: skip

    first = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode != 0
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert not [c for c in calls if c[:2] == ["functions", "deploy"]]
    assert not [c for c in calls if "monitoring" in c]  # no --alert-email: no alerts
    instructions = [line.strip() for line in first.stderr.splitlines()]
    adds = [line for line in instructions if "gcloud secrets versions add" in line]
    named = [shlex.split(line.rsplit("| ", 1)[1])[4] for line in adds]
    needed = ("TASKS_SECRET", "ADMIN_SESSION_SECRET", "OPENAI_API_KEY", "WHATSAPP_VERIFY_TOKEN",
              "WHATSAPP_APP_SECRET", "WHATSAPP_ACCESS_TOKEN")  # fmt: skip
    assert named == [f"comptoir-{STAGE}-{n}" for n in needed]
    rerun = f"make deploy-gcp GCP_PROJECT={PROJECT} GCP_REGION={REGION} STAGE={STAGE} " \
            f"GCP_ARGS={shlex.quote(shlex.join(passed))}"  # fmt: skip
    assert rerun in instructions

    for line in adds:  # what the operator runs, as printed
        subprocess.run(["bash", "-c", line], env=env, check=True, timeout=30)
    generated = (values / f"comptoir-{STAGE}-TASKS_SECRET").read_text()
    assert len(generated) == 64 and int(generated, 16) >= 0  # hex, no newline
    session_secret = (values / f"comptoir-{STAGE}-ADMIN_SESSION_SECRET").read_text()
    assert len(session_secret) == 64 and session_secret != generated  # >= 32, its own
    assert (values / f"comptoir-{STAGE}-OPENAI_API_KEY").read_text() == "YOUR_OPENAI_API_KEY"

    log.write_text("")
    again = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr[-2000:]
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    deployed = [c for c in calls if c[:2] == ["functions", "deploy"]]
    assert len(deployed) == len(FUNCTIONS)
    chat = next(c for c in deployed if c[2] == f"comptoir-{STAGE}-chat")
    assert f"OPENAI_API_KEY=comptoir-{STAGE}-OPENAI_API_KEY:latest" in flag(chat, "--set-secrets")
    job = next(c for c in calls if c[:4] == ["scheduler", "jobs", "create", "http"])
    assert flag(job, "--headers").endswith(f"{TASKS_HEADER}={generated}")


def test_alert_policies_mail_the_address_given(dry_run: list[str], build_dir: Path) -> None:
    channel = one(dry_run, "gcloud", "beta", "monitoring", "channels", "create")
    assert flag(channel, "--type") == "email"
    assert flag(channel, "--channel-labels") == f"email_address={ALERT_EMAIL}"
    created = find(dry_run, "gcloud", "monitoring", "policies", "create")
    policies = {}
    for command in created:
        assert flag(command, "--notification-channels").startswith(
            f"projects/{PROJECT}/notificationChannels/"
        )
        path = Path(flag(command, "--policy-from-file"))
        assert path.parent == build_dir / "alerts"
        policies[path.stem] = json.loads(path.read_text())
    assert set(policies) == {
        "function-errors", "function-5xx", "dead-letters", "worker-backlog", "firestore-errors"
    }  # fmt: skip
    filters = {}
    for name, policy in policies.items():
        assert policy["displayName"].startswith(f"comptoir-{STAGE}: ")
        (condition,) = policy["conditions"]
        threshold = condition["conditionThreshold"]
        assert threshold["comparison"] == "COMPARISON_GT"
        assert threshold["aggregations"][0]["alignmentPeriod"].endswith("s")
        filters[name] = threshold["filter"]
    stage_services = f'resource.labels.service_name=starts_with("comptoir-{STAGE}-")'
    assert stage_services in filters["function-errors"]
    assert 'metric.labels.severity=one_of("ERROR"' in filters["function-errors"]
    assert stage_services in filters["function-5xx"]
    assert 'response_code_class="5xx"' in filters["function-5xx"]
    assert (f'subscription_id="comptoir-{STAGE}-inbound-dead-keep"' in filters["dead-letters"]
            and "num_undelivered_messages" in filters["dead-letters"])  # fmt: skip
    assert (f'subscription_id="comptoir-{STAGE}-inbound-worker"' in filters["worker-backlog"]
            and "oldest_unacked_message_age" in filters["worker-backlog"])  # fmt: skip
    assert 'resource.type="firestore.googleapis.com/Database"' in filters["firestore-errors"]


def test_a_second_run_keeps_the_alerts_it_finds(tmp_path: Path) -> None:
    env, values, log = fake_gcloud(tmp_path)
    (values / f"comptoir-{STAGE}-TASKS_SECRET").write_text("s3cret")
    (values / f"comptoir-{STAGE}-ADMIN_SESSION_SECRET").write_text("a" * 64)
    env["FAKE_GCLOUD_LISTED"] = "1"
    result = subprocess.run(
        [sys.executable, "infra/gcp/deploy.py", "--project", PROJECT, "--stage", STAGE,
         "--project-number", "123", "--skip-web", "--build-dir", str(tmp_path / "build"),
         "--alert-email", ALERT_EMAIL],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    monitoring = [c for c in calls if "monitoring" in c]
    assert [c for c in monitoring if "list" in c]  # looked for the channel and the policies
    assert not [c for c in monitoring if "create" in c]
    assert result.stdout.count("exists already: skipped") == 6  # the channel and 5 policies


def test_the_data_bucket_holds_the_catalogue_snapshots_privately(dry_run: list[str]) -> None:
    bucket = f"gs://comptoir-{STAGE}-data-{PROJECT}"
    create = one(dry_run, "gcloud", "storage", "buckets", "create", bucket)
    assert "--public-access-prevention" in create and "--uniform-bucket-level-access" in create
    grants = find(dry_run, "gcloud", "storage", "buckets", "add-iam-policy-binding", bucket)
    assert {flag(c, "--member") for c in grants} == {
        f"serviceAccount:{gcp_account(s)}" for s in ("chat", "worker", "admin")
    }
    assert {flag(c, "--role") for c in grants} == {"roles/storage.objectUser"}
    assert "allUsers" not in " ".join(" ".join(c) for c in grants)
    listed = commands(dry_run)
    deploys = find(dry_run, "gcloud", "functions", "deploy")
    assert max(listed.index(c) for c in grants) < listed.index(deploys[0])


def test_the_console_is_served_by_the_admin_function(dry_run: list[str], build_dir: Path) -> None:
    """Its files go in the admin function's source; its URL is printed with the first
    operator's command."""
    copied = build_dir / "admin" / "web" / "dist" / "admin"
    assert sorted(p.name for p in copied.iterdir()) == ["console.89abcdef01.js", "index.html"]
    assert not (build_dir / "chat" / "web").exists()  # the console goes with admin only
    text = "\n".join(dry_run)
    assert f"# Console:  {CONSOLE_URL}" in text
    assert f"ADMIN_URL={CONSOLE_URL}" in text
    assert "python -m shared operator add --shop maison-teranga" in text


def test_a_console_not_built_is_skipped_with_a_message(tmp_path: Path) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = gcp.main(
            ["--project", PROJECT, "--stage", STAGE, "--dry-run", "--project-number", "1",
             "--build-dir", str(tmp_path / "build"), "--console-dir", str(tmp_path / "none"),
             "--skip-web"]
        )  # fmt: skip
    assert code == 0
    assert "the console's files are not deployed" in out.getvalue()
    assert not (tmp_path / "build" / "admin" / "web").exists()


def test_the_data_bucket_forgets_voice_notes_after_30_days(dry_run: list[str]) -> None:
    bucket = f"gs://comptoir-{STAGE}-data-{PROJECT}"
    update = one(dry_run, "gcloud", "storage", "buckets", "update", bucket)
    rules = json.loads((ROOT / flag(update, "--lifecycle-file")).read_text())["rule"]
    assert rules == [
        {"action": {"type": "Delete"}, "condition": {"age": 30, "matchesPrefix": ["voice-notes/"]}}
    ]
