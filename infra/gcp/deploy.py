"""Deploy Comptoir to Google Cloud with gcloud: ``make deploy-gcp``.

    python infra/gcp/deploy.py --project my-shop-123 --region europe-west1 --stage prod
    python infra/gcp/deploy.py --project my-shop-123 --dry-run    # print every command, run none

What it sets up, in order (every name carries the stage):

1. the APIs it uses, one service account per function, one for Pub/Sub's push and one for
   Cloud Build: projects whose Cloud Build API was enabled since mid-2024 build with the
   Compute Engine default account, which may lack the rights to build a function, so every
   ``gcloud functions deploy`` names this account with ``--build-service-account`` (Google's
   fix: cloud.google.com/functions/docs/securing/build-custom-sa; the roles are
   ``BUILD_ROLES``);
2. Firestore (native mode): the database, the composite indexes and the TTL policies of
   ``infra/gcp/firestore.indexes.json`` (Firebase's format, so ``firebase deploy`` reads it too);
3. Secret Manager: one secret per variable (``comptoir-<stage>-NAME``); each function may read
   only its own, and only those that have a version are mounted (``--set-secrets``). The
   secrets this configuration cannot run without (``needed_secrets``) must have a value: when
   one has none (a first deploy), the script prints the exact commands that add them and
   stops, before the functions, for ``make deploy-gcp`` to be run again;
4. Pub/Sub (the queue backend: ordering keys, see shared/queue/pubsub.py): the topic, a
   dead-letter topic kept by a pull subscription, and the worker's push subscription with
   message ordering, a dead-letter policy and exponential retry;
5. Cloud Functions (2nd gen), one per entry of ``functions.FUNCTIONS``, each from a source
   folder of its own (``infra/gcp/.build/<function>``: ``main.py`` re-exporting the
   functions-framework target, the shared library, requirements.txt without boto3) and an
   env-vars file (values with commas, like ALLOWED_ORIGINS, cannot go through --set-env-vars);
6. Cloud Scheduler jobs for the functions' ``schedules``: each POSTs ``/{task}`` to its (public)
   function with the ``X-Tasks-Secret`` header, read from Secret Manager at deploy time;
7. with ``--alert-email``, an e-mail notification channel and Cloud Monitoring alert policies
   (``alert_policies``): error logs and 5xx answers of the functions, dead letters kept, a
   worker backlog, Firestore errors; each policy's JSON is written under the build folder;
8. a GCS bucket for the widget, readable by anyone, with CORS; ``publish-web`` uploads it with
   its Cache-Control headers (a year for content-hashed files, 5 minutes for the loader);
9. a private GCS bucket for the catalogue snapshots (``CATALOG_BLOB_URL``), read and written by
   the functions that build a retrieval index or import a catalogue (``CATALOG_USERS``).

The operator console: the admin function serves its files itself (``web/dist/admin``, copied
into its source folder; ``shared/http/static.py``) under ``/admin/``, next to its API under
``/admin/api``: one origin, which the session cookie (SameSite=Strict) needs, with no load
balancer to pay for and set up. Its address (``ADMIN_URL``) is the function's deterministic
Cloud Run URL, ``https://<function>-<project number>.<region>.run.app/admin/``, known before the
first deploy; the cloudfunctions.net URL would put the function's name before ``/admin/``.

Create commands are skipped when a ``describe`` finds the resource (a second run updates the
functions and changes nothing else). The dry run prints the same commands and checks; it
assumes every resource is absent and every secret has a version.

Every function has its own URL on Google Cloud (no single API host as on AWS): the widget's
``data-api`` is the chat function's URL (its routes answer under it as /chat and /chat/history),
and Meta and Telegram get the webhook functions' URLs.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: the repo's functions/ holds the list

from functions import FUNCTIONS, Function, Schedule  # noqa: E402 - needs the line above
from shared.llm import PROVIDERS  # noqa: E402
from shared.speech import PROVIDERS as TTS_PROVIDERS  # noqa: E402

BUILD = HERE / ".build"
INDEXES = HERE / "firestore.indexes.json"
CORS = HERE / "widget-cors.json"
DATA_LIFECYCLE = HERE / "data-lifecycle.json"
SECRET_NAMES: list[str] = json.loads((HERE.parent / "secret-names.json").read_text())
RUNTIME = "python312"
DATABASE = "(default)"
WIDGET_PREFIX = "widget/"
CONSOLE_DIR = ROOT / "web" / "dist" / "admin"  # node web/build.mjs writes it
CONSOLE_FUNCTION = "admin"  # serves the console's files (functions/admin.py)
# Who reads and writes the catalogue snapshots: a cold start reads one, a miss writes it, an
# import (the console's upload) replaces it.
CATALOG_USERS = ("chat", "worker", "admin")
APIS = (
    "cloudfunctions.googleapis.com",
    "run.googleapis.com",
    "cloudbuild.googleapis.com",
    "artifactregistry.googleapis.com",
    "firestore.googleapis.com",
    "pubsub.googleapis.com",
    "secretmanager.googleapis.com",
    "cloudscheduler.googleapis.com",
    "iam.googleapis.com",
    "monitoring.googleapis.com",
)
# Pub/Sub's bounds for a dead-letter policy's max_delivery_attempts.
PUBSUB_MIN_ATTEMPTS, PUBSUB_MAX_ATTEMPTS = 5, 100
# Firestore has no per-collection IAM: every function gets the project's document access.
STORE_ROLE = "roles/datastore.user"
# Pub/Sub waits this long for the worker's answer before delivering again: above its timeout.
PUSH_ACK_DEADLINE_S = 300
# What Cloud Build's account needs to build a function from source: write the build logs, push
# the image to Artifact Registry, read the uploaded source (Google's list for a user-specified
# build account: cloud.google.com/run/docs/configuring/services/build-service-account).
BUILD_ROLES = ("roles/logging.logWriter", "roles/artifactregistry.writer",
               "roles/storage.objectAdmin")  # fmt: skip
# Accounts besides the functions' own: Pub/Sub's push identity and Cloud Build's.
PUSH, BUILDER = "push", "build"
# The header the tasks function checks (shared/tasks.py TASKS_HEADER) and the secret it holds.
TASKS_HEADER, TASKS_SECRET = "X-Tasks-Secret", "TASKS_SECRET"
# Signs the console's session cookies (shared/admin/auth.py).
ADMIN_SECRET = "ADMIN_SESSION_SECRET"  # noqa: S105 - a secret's name, not its value


def memory(fn: Function) -> str:
    return f"{fn.memory_mb // 1024}Gi" if fn.memory_mb % 1024 == 0 else f"{fn.memory_mb}Mi"


@dataclass
class Config:
    project: str
    region: str
    stage: str
    firestore_location: str
    project_number: str
    worker_max_attempts: int
    settings: dict[str, str] = field(default_factory=dict)
    build: Path = BUILD  # where the functions' source folders are written
    console: Path = CONSOLE_DIR  # the console's built files

    @property
    def prefix(self) -> str:
        return f"comptoir-{self.stage}"

    def function_name(self, fn: Function) -> str:
        return f"{self.prefix}-{fn.name.replace('_', '-')}"

    def function_url(self, fn: Function) -> str:
        return f"https://{self.region}-{self.project}.cloudfunctions.net/{self.function_name(fn)}"

    def account(self, short: str) -> str:
        return f"{self.prefix}-{short}@{self.project}.iam.gserviceaccount.com"

    def secret_id(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    @property
    def topic(self) -> str:
        return f"{self.prefix}-inbound"

    @property
    def dead_topic(self) -> str:
        return f"{self.prefix}-inbound-dead"

    @property
    def subscription(self) -> str:
        return f"{self.prefix}-inbound-worker"

    @property
    def dead_subscription(self) -> str:
        return f"{self.prefix}-inbound-dead-keep"

    @property
    def bucket(self) -> str:
        return f"{self.prefix}-widget-{self.project}"

    @property
    def data_bucket(self) -> str:
        return f"{self.prefix}-data-{self.project}"

    @property
    def admin_url(self) -> str:
        """The console: the admin function's deterministic Cloud Run URL (Google's format,
        cloud.google.com/run/docs/triggering/https-request), paths as the browser sends them."""
        name = f"{self.prefix}-{CONSOLE_FUNCTION}"
        return f"https://{name}-{self.project_number}.{self.region}.run.app/admin/"

    @property
    def pubsub_agent(self) -> str:
        return f"service-{self.project_number}@gcp-sa-pubsub.iam.gserviceaccount.com"

    @property
    def max_delivery_attempts(self) -> int:
        # One more than the worker's own limit: at attempt WORKER_MAX_ATTEMPTS the worker
        # records the dead letter itself (with its reason); Pub/Sub's dead-letter topic only
        # catches a last attempt that died before it could (shared/queue/pubsub.py).
        return max(PUBSUB_MIN_ATTEMPTS, self.worker_max_attempts + 1)

    def env(self, fn: Function) -> dict[str, str]:
        values = {
            "STORE_URL": f"firestore://{self.project}?database={DATABASE}",
            "QUEUE_URL": f"pubsub://{self.project}/{self.topic}",
            "WORKER_MAX_ATTEMPTS": str(self.worker_max_attempts),
            "ADMIN_URL": self.admin_url,
            "CATALOG_BLOB_URL": f"gs://{self.data_bucket}",
            "MEDIA_BLOB_URL": f"gs://{self.data_bucket}",
            **{k: v for k, v in self.settings.items() if k in _COMMON_SETTINGS},
            **{k: self.settings.get(k, "") for k in fn.settings},
        }
        return {k: v for k, v in values.items() if v != ""}  # empty: the default applies

    def validate(self) -> None:
        problems = []
        if not re.fullmatch(r"[a-z][a-z0-9-]{4,28}[a-z0-9]", self.project):
            problems.append(f"--project {self.project!r} is not a project id")
        if not re.fullmatch(r"[a-z][a-z0-9]{0,9}", self.stage):
            problems.append("--stage: 1-10 lowercase letters and digits, starting with a letter")
        for short in [f.short for f in FUNCTIONS] + [PUSH, BUILDER]:
            account_id = f"{self.prefix}-{short}"
            if len(account_id) > 30:  # IAM's limit for a service account id
                problems.append(f"service account id {account_id!r} is over 30 characters")
        for bucket in (self.bucket, self.data_bucket):
            if len(bucket) > 63:
                problems.append(f"bucket name {bucket!r} is over 63 characters")
        if not 1 <= self.worker_max_attempts < PUBSUB_MAX_ATTEMPTS:
            problems.append("--worker-max-attempts must be 1-99")
        if problems:
            raise SystemExit("error: " + "; ".join(problems))


# Settings every function reads (from the command line, else their defaults).
_COMMON_SETTINGS = ("DEFAULT_SHOP", "LLM_PROVIDER", "LLM_MODEL", "LLM_FALLBACKS", "ALLOWED_ORIGINS",
                    "LOG_LEVEL")  # fmt: skip


class Runner:
    """Prints each command; runs it unless this is a dry run."""

    def __init__(self, dry_run: bool) -> None:
        self.dry_run = dry_run
        if not dry_run and shutil.which("gcloud") is None:
            raise SystemExit("gcloud is not installed (cloud.google.com/sdk); try --dry-run")

    def section(self, title: str) -> None:
        print(f"\n# --- {title}")

    def note(self, text: str) -> None:
        print(f"# {text}")

    def run(
        self,
        argv: Sequence[str],
        *,
        unless: Sequence[str] | None = None,
        unless_listed: Sequence[str] | None = None,
        hide: str = "",
    ) -> None:
        """Run ``argv``; with ``unless``, only when that (a describe) fails; with
        ``unless_listed``, only when that listing prints nothing. ``hide`` (a secret in the
        command) is printed as ***."""
        shown_argv = [a.replace(hide, "***") if hide else a for a in argv]
        print(shlex.join(shown_argv), flush=True)
        if self.dry_run:
            return
        if (unless is not None and self._quiet(unless)) or (
            unless_listed is not None and self._lists(unless_listed)
        ):
            print("#   exists already: skipped")
            return
        if subprocess.run(list(argv), check=False, cwd=ROOT).returncode != 0:  # noqa: S603
            raise SystemExit(f"failed: {shlex.join(argv)}")

    def run_tolerating(self, argv: Sequence[str], marker: str) -> None:
        """Run ``argv``; an error whose message holds ``marker`` (ALREADY_EXISTS) is fine."""
        print(shlex.join(argv), flush=True)
        if self.dry_run:
            return
        result = subprocess.run(  # noqa: S603
            list(argv), check=False, cwd=ROOT, capture_output=True, text=True
        )
        if result.returncode != 0 and marker not in result.stderr:
            sys.stderr.write(result.stderr)
            raise SystemExit(f"failed: {shlex.join(argv)}")

    def finds(self, argv: Sequence[str]) -> bool:
        """Whether a listing (a ``list`` with ``--format=value(...)``) prints anything; a dry run
        assumes it does."""
        print(f"# check: {shlex.join(argv)}", flush=True)
        return True if self.dry_run else self._lists(argv)

    def _lists(self, argv: Sequence[str]) -> bool:
        result = subprocess.run(  # noqa: S603
            list(argv), check=False, cwd=ROOT, capture_output=True, text=True
        )
        if result.returncode != 0:
            sys.stderr.write(result.stderr)
            raise SystemExit(f"failed: {shlex.join(argv)}")
        return result.stdout.strip() != ""

    def value(self, argv: Sequence[str], placeholder: str) -> str:
        print(f"# read: {shlex.join(argv)}")
        if self.dry_run:
            return placeholder
        result = subprocess.run(  # noqa: S603
            list(argv), check=True, cwd=ROOT, capture_output=True, text=True
        )
        return result.stdout.strip()

    def _quiet(self, argv: Sequence[str]) -> bool:
        result = subprocess.run(list(argv), check=False, capture_output=True, cwd=ROOT)  # noqa: S603
        return result.returncode == 0


def shown(path: Path) -> str:
    """A path as printed in commands: relative to the repo (where they run) when inside it."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def build_sources(config: Config) -> bool:
    """One source folder per function (what ``--source`` uploads) and its env-vars file; the
    console's files go with the admin function. Whether they were there to go."""
    requirements = [
        line
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if not line.lower().startswith("boto3")  # AWS only
    ]
    for fn in FUNCTIONS:
        folder = config.build / fn.name
        shutil.rmtree(folder, ignore_errors=True)  # only what an earlier run built
        (folder / "functions").mkdir(parents=True)
        for name in ("__init__.py", "_path.py", f"{fn.name}.py"):
            shutil.copy2(ROOT / "functions" / name, folder / "functions")
        shutil.copytree(
            ROOT / "shared",
            folder / "shared",
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "demo"),
        )
        # Cloud Functions loads main.py from the source root; the target keeps its name.
        (folder / "main.py").write_text(
            f'"""Generated by infra/gcp/deploy.py."""\n\n'
            f"from functions.{fn.name} import {fn.name}\n\n"
            f'__all__ = ["{fn.name}"]\n'
        )
        (folder / "requirements.txt").write_text("\n".join(requirements) + "\n")
        if fn.name == CONSOLE_FUNCTION and config.console.is_dir():
            shutil.copytree(config.console, folder / "web" / "dist" / "admin")
        # JSON strings are YAML strings: quoting and commas come out right.
        env_lines = [f"{k}: {json.dumps(v)}" for k, v in sorted(config.env(fn).items())]
        (config.build / f"{fn.name}.env.yaml").write_text("\n".join(env_lines) + "\n")
    return config.console.is_dir()


def deploy(config: Config, runner: Runner, *, rerun: str, publish_web: bool = True) -> None:
    """Set everything up; ``rerun`` is the command that runs this deploy again (printed when
    it stops for a secret's value)."""
    p = f"--project={config.project}"
    gcloud = "gcloud"

    runner.section("APIs")
    runner.run([gcloud, "services", "enable", *APIS, p])
    if config.project_number == "PROJECT_NUMBER":
        config.project_number = runner.value(
            [gcloud, "projects", "describe", config.project, "--format=value(projectNumber)"],
            "PROJECT_NUMBER",
        )
    # After the project number: ADMIN_URL, in every env-vars file, holds it.
    if not build_sources(config):
        runner.note(f"{shown(config.console)} does not exist: the console's files are not "
                    "deployed (build them with node web/build.mjs, then deploy again)")  # fmt: skip

    runner.section("Service accounts: one per function, Pub/Sub's push, Cloud Build's")
    shorts = [(f.short, f"Comptoir {config.stage} {f.name}") for f in FUNCTIONS]
    shorts.append((PUSH, f"Comptoir {config.stage} Pub/Sub push to the worker"))
    shorts.append((BUILDER, f"Comptoir {config.stage} Cloud Build of the functions"))
    for short, title in shorts:
        email = config.account(short)
        runner.run(
            [gcloud, "iam", "service-accounts", "create", email.split("@")[0],
             f"--display-name={title}", p],
            unless=[gcloud, "iam", "service-accounts", "describe", email, p],
        )  # fmt: skip

    firestore(config, runner)
    available = secrets(config, runner, rerun)

    runner.section("Pub/Sub topics: the queue and its dead letters")
    for topic in (config.topic, config.dead_topic):
        runner.run(
            [gcloud, "pubsub", "topics", "create", topic, p],
            unless=[gcloud, "pubsub", "topics", "describe", topic, p],
        )

    runner.section("IAM: Cloud Build's account; Firestore, Secret Manager and Pub/Sub")
    builder = f"--member=serviceAccount:{config.account(BUILDER)}"
    for role in BUILD_ROLES:
        runner.run([gcloud, "projects", "add-iam-policy-binding", config.project, builder,
                    f"--role={role}", "--condition=None", "--quiet"])  # fmt: skip
    for fn in FUNCTIONS:
        member = f"--member=serviceAccount:{config.account(fn.short)}"
        # Firestore has no per-collection IAM: the project is Comptoir's alone.
        runner.run([gcloud, "projects", "add-iam-policy-binding", config.project, member,
                    f"--role={STORE_ROLE}", "--condition=None", "--quiet"])  # fmt: skip
        for name in fn.secrets:
            runner.run([gcloud, "secrets", "add-iam-policy-binding", config.secret_id(name),
                        member, "--role=roles/secretmanager.secretAccessor", p])  # fmt: skip
        if fn.publishes:
            runner.run([gcloud, "pubsub", "topics", "add-iam-policy-binding", config.topic,
                        member, "--role=roles/pubsub.publisher", p])  # fmt: skip
    data_bucket(config, runner)

    runner.section("Cloud Functions (2nd gen)")
    for fn in FUNCTIONS:
        runner.run(function_command(config, fn, available))

    worker(config, runner)
    schedules(config, runner)
    alerts(config, runner)
    widget(config, runner, publish_web)
    print(next_steps(config))


def function_command(config: Config, fn: Function, available: set[str]) -> list[str]:
    mounted = [n for n in fn.secrets if n in available]
    command = [
        "gcloud", "functions", "deploy", config.function_name(fn), "--gen2",
        f"--project={config.project}", f"--region={config.region}", f"--runtime={RUNTIME}",
        f"--source={shown(config.build / fn.name)}", f"--entry-point={fn.name}",
        "--trigger-http",
        "--allow-unauthenticated" if fn.public else "--no-allow-unauthenticated",
        f"--service-account={config.account(fn.short)}",
        # Cloud Build runs as this account, not the project's default (see the docstring).
        f"--build-service-account=projects/{config.project}/serviceAccounts/"
        f"{config.account(BUILDER)}",
        f"--env-vars-file={shown(config.build / f'{fn.name}.env.yaml')}",
        f"--memory={memory(fn)}", f"--timeout={fn.gcp_timeout_s}s",
        f"--max-instances={fn.gcp_max_instances}",
    ]  # fmt: skip
    if mounted:
        refs = ",".join(f"{n}={config.secret_id(n)}:latest" for n in mounted)
        command.append(f"--set-secrets={refs}")
    else:
        command.append("--clear-secrets")
    return command


def firestore(config: Config, runner: Runner) -> None:
    gcloud, p, db = "gcloud", f"--project={config.project}", f"--database={DATABASE}"
    spec = json.loads(INDEXES.read_text())
    runner.section("Firestore: database, composite indexes, TTL policies")
    runner.run(
        [gcloud, "firestore", "databases", "create", db, f"--location={config.firestore_location}",
         "--type=firestore-native", p],
        unless=[gcloud, "firestore", "databases", "describe", db, p],
    )  # fmt: skip
    for index in spec["indexes"]:
        fields = [
            f"--field-config=field-path={f['fieldPath']},order={f['order'].lower()}"
            for f in index["fields"]
        ]
        runner.run_tolerating(
            [gcloud, "firestore", "indexes", "composite", "create",
             f"--collection-group={index['collectionGroup']}",
             f"--query-scope={index['queryScope'].lower().replace('_', '-')}",
             *fields, db, "--async", p],
            "ALREADY_EXISTS",
        )  # fmt: skip
    for override in spec["fieldOverrides"]:
        group, path = override["collectionGroup"], override["fieldPath"]
        where = [f"--collection-group={group}", db, "--async", p]
        if override.get("ttl"):
            runner.run([gcloud, "firestore", "fields", "ttls", "update", path, "--enable-ttl",
                        *where])  # fmt: skip
        if override.get("indexes") == []:
            # An always-increasing timestamp indexed by default hot-spots writes; nothing
            # queries on it.
            runner.run([gcloud, "firestore", "indexes", "fields", "update", path,
                        "--disable-indexes", *where])  # fmt: skip


def needed_secrets(config: Config) -> list[tuple[str, ...]]:
    """What this configuration cannot run without: each entry is satisfied by any one of its
    names (the first is the one to add). The others are optional: mounted when they have a
    value (a Telegram bot, a payment provider)."""
    needed: list[tuple[str, ...]] = [(TASKS_SECRET,)]  # the scheduler's jobs carry it
    if any(ADMIN_SECRET in fn.secrets for fn in FUNCTIONS):
        needed.append((ADMIN_SECRET,))  # unset, the console is off (503)
    key = PROVIDERS[config.settings.get("LLM_PROVIDER") or "offline"].key_variable
    if key:  # the provider's own variable, or the generic one
        needed.append((key, "LLM_API_KEY"))
    if config.settings.get("WHATSAPP_PHONE_NUMBER_ID"):
        needed += [("WHATSAPP_VERIFY_TOKEN",), ("WHATSAPP_APP_SECRET",),
                   ("WHATSAPP_ACCESS_TOKEN",)]  # fmt: skip
    return needed


# Secrets nobody has to know: the command that adds one generates its value.
GENERATED = dict.fromkeys((TASKS_SECRET, ADMIN_SECRET), "openssl rand -hex 32 | tr -d '\\n'")


def add_value_command(config: Config, name: str) -> str:
    source = GENERATED.get(name) or f"printf %s {shlex.quote('YOUR_' + name)}"
    add = ["gcloud", "secrets", "versions", "add", config.secret_id(name), "--data-file=-",
           f"--project={config.project}"]  # fmt: skip
    return f"{source} | {shlex.join(add)}"


def missing_secrets_message(config: Config, missing: list[tuple[str, ...]], rerun: str) -> str:
    lines = [f"error: {len(missing)} secret(s) this deploy needs have no value yet; add them:"]
    for names in missing:
        alternatives = " or ".join(config.secret_id(n) for n in names[1:])
        about = f" (or add {alternatives} instead)" if alternatives else ""
        if names[0] in GENERATED:
            about = " (a generated value: nobody needs to know it)"
        lines.append(f"  # {names[0]}{about}")
        lines.append(f"  {add_value_command(config, names[0])}")
    lines.append("then deploy again (the functions are not deployed yet):")
    lines.append(f"  {rerun}")
    return "\n".join(lines)


def secrets(config: Config, runner: Runner, rerun: str) -> set[str]:
    """Create the secrets; return those that have a version (the ones functions can mount).
    Stops, saying what to run, when a needed one has no version."""
    gcloud, p = "gcloud", f"--project={config.project}"
    used = sorted({n for fn in FUNCTIONS for n in fn.secrets}, key=SECRET_NAMES.index)
    runner.section("Secret Manager: one secret per variable; add values with")
    runner.note("  printf %s VALUE | gcloud secrets versions add SECRET --data-file=-")
    available = set()
    for name in used:
        secret = config.secret_id(name)
        runner.run(
            [gcloud, "secrets", "create", secret, "--replication-policy=automatic", p],
            unless=[gcloud, "secrets", "describe", secret, p],
        )
        # A disabled or destroyed version cannot be mounted: only enabled ones count.
        if runner.finds([gcloud, "secrets", "versions", "list", secret, "--limit=1",
                         "--filter=state=ENABLED", "--format=value(name)", p]):  # fmt: skip
            available.add(name)
        else:
            runner.note(f"{secret} has no value: not mounted (optional; add one, deploy again)")
    missing = [names for names in needed_secrets(config) if not available & set(names)]
    if missing:
        raise SystemExit(missing_secrets_message(config, missing, rerun))
    return available


def worker(config: Config, runner: Runner) -> None:
    gcloud, p = "gcloud", f"--project={config.project}"
    fn = next(f for f in FUNCTIONS if f.queue_trigger)
    push, url = config.account(PUSH), config.function_url(fn)
    agent = f"serviceAccount:{config.pubsub_agent}"
    runner.section("The worker: Pub/Sub pushes to it, with order and dead letters")
    runner.run([gcloud, "functions", "add-invoker-policy-binding", config.function_name(fn),
                f"--region={config.region}", f"--member=serviceAccount:{push}", p])  # fmt: skip
    # Pub/Sub's own agent signs the push tokens and moves dead letters.
    runner.run([gcloud, "iam", "service-accounts", "add-iam-policy-binding", push,
                f"--member={agent}", "--role=roles/iam.serviceAccountTokenCreator", p])  # fmt: skip
    runner.run([gcloud, "pubsub", "topics", "add-iam-policy-binding", config.dead_topic,
                f"--member={agent}", "--role=roles/pubsub.publisher", p])  # fmt: skip
    runner.run(
        [gcloud, "pubsub", "subscriptions", "create", config.subscription,
         f"--topic={config.topic}", f"--push-endpoint={url}",
         f"--push-auth-service-account={push}", f"--push-auth-token-audience={url}",
         "--enable-message-ordering",  # one message per conversation at a time, in order
         f"--dead-letter-topic={config.dead_topic}",
         f"--max-delivery-attempts={config.max_delivery_attempts}",
         f"--ack-deadline={PUSH_ACK_DEADLINE_S}",
         "--min-retry-delay=10s", "--max-retry-delay=600s",
         "--expiration-period=never",  # a quiet shop must not lose its subscription
         p],
        unless=[gcloud, "pubsub", "subscriptions", "describe", config.subscription, p],
    )  # fmt: skip
    runner.run([gcloud, "pubsub", "subscriptions", "add-iam-policy-binding", config.subscription,
                f"--member={agent}", "--role=roles/pubsub.subscriber", p])  # fmt: skip
    # A topic keeps nothing by itself: this subscription holds the dead letters for a look.
    runner.run(
        [gcloud, "pubsub", "subscriptions", "create", config.dead_subscription,
         f"--topic={config.dead_topic}", "--message-retention-duration=14d",
         "--expiration-period=never", p],
        unless=[gcloud, "pubsub", "subscriptions", "describe", config.dead_subscription, p],
    )  # fmt: skip


def schedule_commands(config: Config, fn: Function, schedule: Schedule, secret: str) -> list[str]:
    """The Cloud Scheduler job calling ``POST {function URL}/{task}`` with the tasks secret: the
    function is public (it has a route) and checks the header itself."""
    url = f"{config.function_url(fn)}/{schedule.task}"
    return [
        "gcloud", "scheduler", "jobs", "create", "http", f"{config.prefix}-{schedule.task}",
        f"--location={config.region}", f"--schedule={schedule.cron}",
        f"--time-zone={schedule.time_zone}", f"--uri={url}", "--http-method=POST",
        f"--headers=Content-Type=application/json,{TASKS_HEADER}={secret}",
        f"--message-body={json.dumps({'task': schedule.task})}", f"--project={config.project}",
    ]  # fmt: skip


def schedules(config: Config, runner: Runner) -> None:
    """The scheduler's jobs; TASKS_SECRET has a value (``needed_secrets``)."""
    gcloud, p = "gcloud", f"--project={config.project}"
    runner.section("Cloud Scheduler: each schedule calls its function with the tasks secret")
    for fn, schedule in [(f, s) for f in FUNCTIONS for s in f.schedules]:
        if TASKS_SECRET not in fn.secrets:
            raise SystemExit(f"{fn.name} is scheduled but does not read {TASKS_SECRET}")
        secret = runner.value(
            [gcloud, "secrets", "versions", "access", "latest",
             f"--secret={config.secret_id(TASKS_SECRET)}", p],
            "TASKS_SECRET_VALUE",
        )  # fmt: skip
        job = f"{config.prefix}-{schedule.task}"
        runner.run(
            schedule_commands(config, fn, schedule, secret),
            unless=[gcloud, "scheduler", "jobs", "describe", job,
                    f"--location={config.region}", p],
            hide=secret,
        )  # fmt: skip


# An alert opens when a function answers more 5xx than this in ALERT_WINDOW_S (a few are the
# chat's own 503 with Retry-After, or a push retried), or a message waits longer than this.
ALERT_5XX, ALERT_BACKLOG_S, ALERT_WINDOW_S = 5, 1800, 300
# Firestore answers that are not the caller's doing (ABORTED and NOT_FOUND are ordinary).
FIRESTORE_FAILURES = ("INTERNAL", "UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED",
                      "PERMISSION_DENIED")  # fmt: skip


def alert_policies(config: Config) -> dict[str, dict[str, object]]:
    """Cloud Monitoring alert policies (the API's AlertPolicy JSON), by file name. Cloud
    Functions (2nd gen) run as Cloud Run services named like the functions."""
    services = (f'resource.type="cloud_run_revision" AND '
                f'resource.labels.service_name=starts_with("{config.prefix}-")')  # fmt: skip
    by_service = ["resource.labels.service_name"]

    def policy(title: str, metric_filter: str, threshold: float, aligner: str,
               group_by: Sequence[str], what_to_do: str, duration_s: int = 0,
               period_s: int = ALERT_WINDOW_S) -> dict[str, object]:  # fmt: skip
        return {
            "displayName": f"{config.prefix}: {title}",
            "combiner": "OR",
            "userLabels": {"app": "comptoir", "stage": config.stage},
            "documentation": {"content": what_to_do, "mimeType": "text/markdown"},
            "conditions": [{
                "displayName": title,
                "conditionThreshold": {
                    "filter": metric_filter,
                    "comparison": "COMPARISON_GT",
                    "thresholdValue": threshold,
                    "duration": f"{duration_s}s",
                    "aggregations": [{
                        "alignmentPeriod": f"{period_s}s", "perSeriesAligner": aligner,
                        "crossSeriesReducer": "REDUCE_SUM" if aligner != "ALIGN_MAX"
                        else "REDUCE_MAX", "groupByFields": list(group_by),
                    }],
                },
            }],
        }  # fmt: skip

    logs = shlex.join(["gcloud", "logging", "read", f'resource.type="cloud_run_revision" AND '
                       f'resource.labels.service_name:"{config.prefix}-" AND severity>=ERROR',
                       "--freshness=1h", f"--project={config.project}"])  # fmt: skip
    severe = '"ERROR","CRITICAL","ALERT","EMERGENCY"'
    failures = ",".join(f'"{code}"' for code in FIRESTORE_FAILURES)
    return {
        "function-errors": policy(
            "function errors (error logs)",
            f'metric.type="logging.googleapis.com/log_entry_count" AND {services} AND '
            f"metric.labels.severity=one_of({severe})",
            0, "ALIGN_SUM", by_service,
            f"A function logged an error. The last hour's: `{logs}`.",
        ),
        "function-5xx": policy(
            "functions answering 5xx",
            f'metric.type="run.googleapis.com/request_count" AND {services} AND '
            f'metric.labels.response_code_class="5xx"',
            ALERT_5XX, "ALIGN_SUM", by_service,
            f"More than {ALERT_5XX} server errors in {ALERT_WINDOW_S // 60} minutes.",
        ),
        "dead-letters": policy(
            "dead letters kept",
            f'metric.type="pubsub.googleapis.com/subscription/num_undelivered_messages" AND '
            f'resource.type="pubsub_subscription" AND '
            f'resource.labels.subscription_id="{config.dead_subscription}"',
            0, "ALIGN_MAX", ["resource.labels.subscription_id"],
            f"Messages the worker never handled wait in `{config.dead_subscription}`: "
            f"look (`gcloud pubsub subscriptions pull {config.dead_subscription} --limit=10 "
            f"--project={config.project}`), then acknowledge them (`--auto-ack`).",
        ),
        "worker-backlog": policy(
            "worker backlog",
            f'metric.type="pubsub.googleapis.com/subscription/oldest_unacked_message_age" AND '
            f'resource.type="pubsub_subscription" AND '
            f'resource.labels.subscription_id="{config.subscription}"',
            ALERT_BACKLOG_S, "ALIGN_MAX", ["resource.labels.subscription_id"],
            f"A customer's message has waited over {ALERT_BACKLOG_S // 60} minutes for the "
            "worker (retried, or the worker is down).",
            duration_s=ALERT_WINDOW_S, period_s=60,
        ),
        "firestore-errors": policy(
            "Firestore errors",
            f'metric.type="firestore.googleapis.com/api/request_count" AND '
            f'resource.type="firestore.googleapis.com/Database" AND '
            f"metric.labels.response_code=one_of({failures})",
            0, "ALIGN_SUM", ["metric.labels.response_code"],
            "Firestore refused or failed requests (quota, permissions or an outage).",
        ),
    }


def alerts(config: Config, runner: Runner) -> None:
    gcloud, p = "gcloud", f"--project={config.project}"
    email = config.settings.get("ALERT_EMAIL", "")
    runner.section("Cloud Monitoring: an e-mail channel and the alert policies")
    if not email:
        runner.note("no alerts: pass --alert-email to be told of errors and dead letters")
        return
    # Notification channels are still beta in gcloud; policies are GA.
    channels = [gcloud, "beta", "monitoring", "channels"]
    listing = [*channels, "list", f'--filter=type="email" AND labels.email_address="{email}"',
               "--format=value(name)", p]  # fmt: skip
    runner.run(
        [*channels, "create", f"--display-name=Comptoir {config.stage} alerts",
         "--type=email", f"--channel-labels=email_address={email}", p],
        unless_listed=listing,
    )  # fmt: skip
    found = runner.value(listing, f"projects/{config.project}/notificationChannels/CHANNEL_ID")
    if not found:
        raise SystemExit(f"no notification channel for {email} after creating it: run again")
    channel = found.splitlines()[0]  # one address, one channel (the first if several)
    folder = config.build / "alerts"
    folder.mkdir(parents=True, exist_ok=True)
    for name, policy in alert_policies(config).items():
        path = folder / f"{name}.json"
        path.write_text(json.dumps(policy, indent=2) + "\n")
        runner.run(
            [gcloud, "monitoring", "policies", "create", f"--policy-from-file={shown(path)}",
             f"--notification-channels={channel}", p],
            unless_listed=[gcloud, "monitoring", "policies", "list",
                           f'--filter=displayName="{policy["displayName"]}"',
                           "--format=value(name)", p],
        )  # fmt: skip


def data_bucket(config: Config, runner: Runner) -> None:
    """The catalogue snapshots' bucket: private; its objects readable and writable by the
    functions of ``CATALOG_USERS`` (the bucket holds nothing else)."""
    gcloud, p, bucket = "gcloud", f"--project={config.project}", f"gs://{config.data_bucket}"
    runner.section("The data bucket: catalogue snapshots (CATALOG_BLOB_URL), private")
    runner.run(
        [gcloud, "storage", "buckets", "create", bucket, f"--location={config.region}",
         "--uniform-bucket-level-access", "--public-access-prevention", p],
        unless=[gcloud, "storage", "buckets", "describe", bucket, p],
    )  # fmt: skip
    # The voice notes sent (voice-notes/) are kept 30 days.
    runner.run([gcloud, "storage", "buckets", "update", bucket,
                f"--lifecycle-file={shown(DATA_LIFECYCLE)}", p])  # fmt: skip
    for fn in FUNCTIONS:
        if fn.name in CATALOG_USERS:
            runner.run([gcloud, "storage", "buckets", "add-iam-policy-binding", bucket,
                        f"--member=serviceAccount:{config.account(fn.short)}",
                        "--role=roles/storage.objectUser", p])  # fmt: skip


def widget(config: Config, runner: Runner, publish: bool) -> None:
    gcloud, p, bucket = "gcloud", f"--project={config.project}", f"gs://{config.bucket}"
    runner.section("The widget: a public GCS bucket")
    runner.run(
        [gcloud, "storage", "buckets", "create", bucket, f"--location={config.region}",
         "--uniform-bucket-level-access", p],
        unless=[gcloud, "storage", "buckets", "describe", bucket, p],
    )  # fmt: skip
    # Object viewer (not legacy reader): anyone can read an object, nobody can list them.
    runner.run([gcloud, "storage", "buckets", "add-iam-policy-binding", bucket,
                "--member=allUsers", "--role=roles/storage.objectViewer", p])  # fmt: skip
    runner.run([gcloud, "storage", "buckets", "update", bucket,
                f"--cors-file={shown(CORS)}", p])  # fmt: skip
    command = [sys.executable, "-m", "shared", "publish-web", "--to", bucket,
               "--prefix", WIDGET_PREFIX]  # fmt: skip
    if publish:
        print(shlex.join(["python", *command[1:]]))
        if not runner.dry_run and subprocess.run(command, cwd=ROOT, check=False).returncode:  # noqa: S603
            raise SystemExit("publishing the widget failed (is web/dist built?)")
    else:
        runner.note("widget not published (--skip-web)")


def next_steps(config: Config) -> str:
    urls = {fn.name: config.function_url(fn) for fn in FUNCTIONS}
    loader = f"https://storage.googleapis.com/{config.bucket}/{WIDGET_PREFIX}widget.js"
    shop = config.settings.get("DEFAULT_SHOP") or "demo"
    tag = f'<script src="{loader}" data-api="{urls["chat"]}" data-shop="{shop}" defer></script>'
    store_url = shlex.quote(f"firestore://{config.project}?database={DATABASE}")
    return f"""
# --- Next steps (stage {config.stage}, project {config.project})
# health:   curl {urls["health"]}
# Shopify:  paste before </body> in layout/theme.liquid:
#   {tag}
# WhatsApp: Meta > your app > WhatsApp > Configuration > Webhook:
#   Callback URL {urls["webhook_whatsapp"]}
#   Verify token: the value of secret {config.secret_id("WHATSAPP_VERIFY_TOKEN")}
# Telegram: STORE_URL={store_url} DEFAULT_SHOP={shop} \\
#   TELEGRAM_BOT_TOKEN=... TELEGRAM_WEBHOOK_SECRET=... \\
#   .venv/bin/python -m shared telegram-webhook --url {urls["webhook_telegram"]}
# Console:  {config.admin_url}
#   the first operator (prints a one-use sign-in link, valid 24 hours):
#   STORE_URL={store_url} ADMIN_URL={config.admin_url} \\
#   .venv/bin/python -m shared operator add --shop {shop} you@your-shop.example
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", required=True)
    parser.add_argument("--region", default="europe-west1")
    parser.add_argument("--stage", default="dev")
    parser.add_argument("--firestore-location", help="default: the region")
    parser.add_argument("--project-number", default="PROJECT_NUMBER",
                        help="skips reading it with gcloud projects describe")  # fmt: skip
    parser.add_argument("--worker-max-attempts", type=int, default=5)
    parser.add_argument("--allowed-origins", default="*", help="ALLOWED_ORIGINS (comma list)")
    parser.add_argument("--default-shop", default="demo")
    parser.add_argument("--llm-provider", default="offline", choices=list(PROVIDERS))
    parser.add_argument("--llm-model", default="")
    parser.add_argument("--whatsapp-phone-number-id", default="")
    parser.add_argument("--alert-email", default="", help="where alerts go (none if unset)")
    parser.add_argument("--searxng-url", default="", help="SearXNG for the web_search tool")
    parser.add_argument("--tts-provider", default="offline", choices=list(TTS_PROVIDERS),
                        help="who speaks the replies to voice notes")  # fmt: skip
    parser.add_argument("--skip-web", action="store_true", help="do not upload web/dist")
    parser.add_argument("--build-dir", type=Path, default=BUILD, help="default: infra/gcp/.build")
    parser.add_argument("--console-dir", type=Path, default=CONSOLE_DIR,
                        help="the console's built files (default: web/dist/admin)")  # fmt: skip
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run none")
    args = parser.parse_args(argv)
    passed = sys.argv[1:] if argv is None else argv
    config = Config(
        project=args.project,
        region=args.region,
        stage=args.stage,
        firestore_location=args.firestore_location or args.region,
        project_number=args.project_number,
        worker_max_attempts=args.worker_max_attempts,
        build=args.build_dir.resolve(),
        console=args.console_dir.resolve(),
        settings={
            "ALLOWED_ORIGINS": args.allowed_origins,
            "DEFAULT_SHOP": args.default_shop,
            "LLM_PROVIDER": args.llm_provider,
            "LLM_MODEL": args.llm_model,
            "WHATSAPP_PHONE_NUMBER_ID": args.whatsapp_phone_number_id,
            "ALERT_EMAIL": args.alert_email,
            "SEARXNG_URL": args.searxng_url,
            "TTS_PROVIDER": args.tts_provider,
        },
    )
    config.validate()
    runner = Runner(args.dry_run)
    if args.dry_run:
        print(f"# dry run: comptoir stage {config.stage} in {config.project} ({config.region});")
        print("# nothing is run. Create commands are skipped when the resource exists.")
    deploy(config, runner, rerun=rerun_command(config, passed), publish_web=not args.skip_web)
    return 0


def rerun_command(config: Config, argv: Sequence[str]) -> str:
    """``make deploy-gcp`` with this run's arguments (the Makefile passes the project, region
    and stage by name, everything else through GCP_ARGS)."""
    by_make = ("--project", "--region", "--stage")
    rest, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in by_make:
            skip = True  # its value follows
        elif not arg.startswith(tuple(f"{name}=" for name in by_make)):
            rest.append(arg)
    command = shlex.join(["make", "deploy-gcp", f"GCP_PROJECT={config.project}",
                          f"GCP_REGION={config.region}", f"STAGE={config.stage}"])  # fmt: skip
    return f"{command} GCP_ARGS={shlex.quote(shlex.join(rest))}" if rest else command


if __name__ == "__main__":
    raise SystemExit(main())
