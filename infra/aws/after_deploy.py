"""After ``osls deploy``: publish the widget and the console, then print what the operator does
next.

    python infra/aws/after_deploy.py --stage prod --publish-web   # what `make deploy` runs
    python infra/aws/after_deploy.py --stage prod                 # the next steps again
    python infra/aws/after_deploy.py --info-file info.txt         # from a saved `osls info`

Everything comes from ``osls info --verbose``: the stack outputs that serverless.yml declares
(WidgetBucketName, WidgetBaseUrl, ConsoleUrl, SecretName, TableName, ...) and the framework's
HttpApiUrl. The widget (web/dist) goes under widget/ in the bucket, the console's files
(web/dist/admin, when built) under admin/: CloudFront serves both, and the console's API.
No secret value is read or printed: the operator is told where each one lives.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent.parent
WIDGET_PREFIX = "widget/"
# The console's folder in web/dist and its bucket prefix (CloudFront's /admin*, serverless.yml).
CONSOLE_FOLDER = "admin"
CONSOLE_PREFIX = "admin/"
MANIFEST = ROOT / "web" / "dist" / "manifest.json"
REQUIRED_OUTPUTS = ("HttpApiUrl", "WidgetBucketName", "WidgetBaseUrl", "ConsoleUrl", "SecretName",
                    "TableName")  # fmt: skip
_ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class StackInfo:
    stage: str = ""
    region: str = ""
    stack: str = ""
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def api(self) -> str:
        return self.outputs["HttpApiUrl"].rstrip("/")

    @property
    def cdn(self) -> str:
        return self.outputs["WidgetBaseUrl"].rstrip("/")


def parse_info(text: str) -> StackInfo:
    """Read ``osls info --verbose``: ``key: value`` header lines, then sections whose entries
    are indented, ``Stack Outputs`` among them."""
    info = StackInfo()
    section = ""
    for raw in _ANSI_RE.sub("", text).splitlines():
        if not raw.strip():
            continue
        indented = raw.startswith((" ", "\t"))
        key, sep, value = raw.strip().partition(": ")
        if not indented:
            section = raw.strip().rstrip(":") if raw.rstrip().endswith(":") else ""
            if sep and key in ("stage", "region", "stack"):
                setattr(info, key, value.strip())
        elif section == "Stack Outputs" and sep:
            info.outputs[key] = value.strip()
    missing = [name for name in REQUIRED_OUTPUTS if name not in info.outputs]
    if missing:
        raise ValueError(
            f"`osls info --verbose` shows no {', '.join(missing)}: is the stack deployed, "
            "and with this serverless.yml?"
        )
    return info


def widget_blob_url(info: StackInfo, endpoint_url: str | None = None) -> str:
    """The ``--to`` of ``python -m shared publish-web``: the bucket, served through CloudFront."""
    options = {"region": info.region, "public_url": info.cdn}
    if endpoint_url:
        options["endpoint_url"] = endpoint_url
    return f"s3://{info.outputs['WidgetBucketName']}?{urlencode(options)}"


def loader_url(info: StackInfo, manifest: Path = MANIFEST) -> str:
    """Where the shop's script tag points: the loader (short-lived cache), not a hashed file."""
    loader = "widget.js"
    if manifest.is_file():
        named = json.loads(manifest.read_text()).get("loader", "dist/widget.js")
        loader = str(Path(named).relative_to("dist")) if named.startswith("dist/") else named
    return f"{info.cdn}/{WIDGET_PREFIX}{loader}"


def next_steps(info: StackInfo, shop: str | None = None, manifest: Path = MANIFEST) -> str:
    api, secret, stage = info.api, info.outputs["SecretName"], info.stage
    console = info.outputs["ConsoleUrl"]
    shop = shop or info.outputs.get("DefaultShop") or "demo"
    allowed = info.outputs.get("AllowedOrigins", "*")
    if allowed == "*":
        origins = (
            "   ALLOWED_ORIGINS is still '*', so any site may use your assistant. Set\n"
            "     allowedOrigins: https://your-shop.com,https://your-shop.myshopify.com\n"
            f"   under params.{stage} in serverless.yml, then run make deploy STAGE={stage} again."
        )
    else:
        origins = f"   Browsers may call the API from: {allowed}"
    src = loader_url(info, manifest)
    tag = f'<script src="{src}" data-api="{api}" data-shop="{shop}" defer></script>'
    store_url = shlex.quote(f"dynamodb://{info.outputs['TableName']}?region={info.region}")
    read_secret = (
        f"aws secretsmanager get-secret-value --secret-id {secret} "
        "--query SecretString --output text"
    )
    return f"""
Comptoir is deployed: stage {stage}, region {info.region}, stack {info.stack}.
  API      {api}   (check: curl {api}/healthz)
  widget   {info.cdn}/{WIDGET_PREFIX}
  console  {console}
  secrets  Secrets Manager secret {secret}; to read it:
           {read_secret}

1. Shopify: Online Store > Themes > ... > Edit code > layout/theme.liquid; paste before </body>:

   {tag}

{origins}

2. WhatsApp: Meta for Developers > your app > WhatsApp > Configuration > Webhook > Edit:
   Callback URL   {api}/webhooks/whatsapp
   Verify token   the WHATSAPP_VERIFY_TOKEN value of secret {secret}
   then subscribe to the webhook field "messages". Replies also need WHATSAPP_ACCESS_TOKEN
   (in the secret) and whatsappPhoneNumberId (under params.{stage} in serverless.yml).

3. Telegram: register the webhook, with TELEGRAM_BOT_TOKEN and TELEGRAM_WEBHOOK_SECRET set to
   the values in secret {secret} (the command reads the shop from the table with your AWS
   credentials):

   STORE_URL={store_url} DEFAULT_SHOP={shop} \\
   TELEGRAM_BOT_TOKEN=... TELEGRAM_WEBHOOK_SECRET=... \\
     .venv/bin/python -m shared telegram-webhook --url {api}/webhooks/telegram

4. The operator console: {console}
   Add the first operator (it prints a one-use sign-in link, valid 24 hours), with your AWS
   credentials:

   STORE_URL={store_url} ADMIN_URL={shlex.quote(console)} \\
     .venv/bin/python -m shared operator add --shop {shop} you@your-shop.example

Rollback: npx osls deploy list --stage {stage}
          npx osls rollback --stage {stage} --timestamp <a timestamp from that list>
"""


def read_info(stage: str, info_file: Path | None, region: str | None = None) -> str:
    if info_file is not None:
        return info_file.read_text()
    command = ["npx", "osls", "info", "--verbose", "--stage", stage]
    if region:
        command += ["--region", region]
    result = subprocess.run(  # noqa: S603 - fixed command, the stage is an argument
        command, cwd=ROOT, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"`{' '.join(command)}` failed")
    return result.stdout + result.stderr


def publish_web(info: StackInfo, web_dir: Path, endpoint_url: str | None) -> None:
    """The widget under widget/, then the console under admin/ if it is built."""
    publish = [sys.executable, "-m", "shared", "publish-web",
               "--to", widget_blob_url(info, endpoint_url)]  # fmt: skip
    widget = [*publish, "--dir", str(web_dir), "--prefix", WIDGET_PREFIX,
              "--exclude", CONSOLE_FOLDER]  # fmt: skip
    if subprocess.run(widget, cwd=ROOT, check=False).returncode != 0:  # noqa: S603
        raise SystemExit("publishing the widget failed (is web/dist built? node web/build.mjs)")
    console_dir = web_dir / CONSOLE_FOLDER
    if not console_dir.is_dir():
        print(
            f"{console_dir} does not exist: the console's files are not published "
            "(build them with node web/build.mjs, then run this again with --publish-web)",
            file=sys.stderr,
        )
        return
    console = [*publish, "--dir", str(console_dir), "--prefix", CONSOLE_PREFIX]
    if subprocess.run(console, cwd=ROOT, check=False).returncode != 0:  # noqa: S603
        raise SystemExit(f"publishing the console failed ({console_dir})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", default="dev")
    parser.add_argument("--region", help="as given to osls deploy, if it was")
    parser.add_argument("--info-file", type=Path, help="a saved `osls info --verbose` output")
    parser.add_argument("--shop", help="data-shop of the tag (default: the stage's defaultShop)")
    parser.add_argument(
        "--publish-web", action="store_true", help="upload web/dist (and web/dist/admin) first"
    )
    parser.add_argument("--web-dir", type=Path, default=MANIFEST.parent, help="default: web/dist")
    parser.add_argument("--endpoint-url", help="S3 endpoint for --publish-web (tests: moto)")
    args = parser.parse_args(argv)
    try:
        info = parse_info(read_info(args.stage, args.info_file, args.region))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.publish_web:
        publish_web(info, args.web_dir, args.endpoint_url)
    print(next_steps(info, args.shop, args.web_dir / MANIFEST.name))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
