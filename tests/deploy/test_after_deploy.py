"""What `make deploy` does after `osls deploy`: publish the widget (to moto's S3 here) and print
the operator's next steps, from `osls info --verbose`.

``data/osls_info_prod.txt`` follows the format osls prints (lib/plugins/aws/info/display.js and
lib/cli/write-service-outputs.js); no real deploy could be recorded on this machine.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import boto3
import pytest

from tests.deploy.conftest import ROOT

INFO = Path(__file__).parent / "data" / "osls_info_prod.txt"
API = "https://k3x9q2abcd.execute-api.eu-west-1.amazonaws.com"
CDN = "https://d1a2b3c4d5e6f7.cloudfront.net"
SECRET_NAMES: list[str] = json.loads((ROOT / "infra" / "secret-names.json").read_text())


def load(path: str) -> ModuleType:
    # Under its own name: registered as plain "secrets", infra/aws/secrets.py would replace the
    # standard library's module for every later import in the session.
    name = "infra_aws_" + Path(path).stem
    spec = importlib.util.spec_from_file_location(name, ROOT / path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


after_deploy = load("infra/aws/after_deploy.py")
secrets = load("infra/aws/secrets.py")


def test_reads_the_stack_outputs() -> None:
    info = after_deploy.parse_info(INFO.read_text())
    assert (info.stage, info.region, info.stack) == ("prod", "eu-west-1", "comptoir-prod")
    assert info.api == API and info.cdn == CDN
    assert info.outputs["WidgetBucketName"] == "comptoir-prod-widget-123456789012-eu-west-1"


def test_colours_do_not_matter() -> None:
    coloured = INFO.read_text().replace("Stack Outputs:", "\x1b[90mStack Outputs:\x1b[39m")
    assert after_deploy.parse_info(coloured).api == API


def test_prints_the_tag_the_webhooks_and_the_telegram_command(tmp_path: Path) -> None:
    info = after_deploy.parse_info(INFO.read_text())
    text = after_deploy.next_steps(info, manifest=tmp_path / "none.json")
    tag = (
        f'<script src="{CDN}/widget/widget.js" data-api="{API}" '
        'data-shop="maison-teranga" defer></script>'
    )
    assert tag in text
    assert f"Callback URL   {API}/webhooks/whatsapp" in text
    assert "WHATSAPP_VERIFY_TOKEN value of secret comptoir/prod" in text
    assert f"telegram-webhook --url {API}/webhooks/telegram" in text
    assert "STORE_URL='dynamodb://comptoir-prod?region=eu-west-1'" in text
    assert "https://maison-teranga.sn,https://maison-teranga.myshopify.com" in text
    assert "npx osls rollback --stage prod --timestamp" in text
    assert f"curl {API}/healthz" in text
    # The console, on the widget's distribution, and how to add its first operator.
    assert f"console  {CDN}/admin/" in text
    assert f"STORE_URL='dynamodb://comptoir-prod?region=eu-west-1' ADMIN_URL={CDN}/admin/" in text
    assert "python -m shared operator add --shop maison-teranga" in text


def test_warns_while_any_origin_may_call_the_api(tmp_path: Path) -> None:
    text = INFO.read_text().replace(
        "AllowedOrigins: https://maison-teranga.sn,https://maison-teranga.myshopify.com",
        "AllowedOrigins: *",
    )
    steps = after_deploy.next_steps(after_deploy.parse_info(text), manifest=tmp_path / "x")
    assert "ALLOWED_ORIGINS is still '*'" in steps and "params.prod" in steps


def test_the_loader_name_comes_from_the_manifest(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"loader": "dist/loader.js"}))
    info = after_deploy.parse_info(INFO.read_text())
    assert after_deploy.loader_url(info, manifest) == f"{CDN}/widget/loader.js"


def test_an_incomplete_info_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    partial = tmp_path / "info.txt"
    partial.write_text(INFO.read_text().replace("  WidgetBaseUrl:", "  Other:"))
    assert after_deploy.main(["--info-file", str(partial)]) == 2
    assert "WidgetBaseUrl" in capsys.readouterr().err


def test_publishes_the_widget_with_types_and_cache_headers(
    moto_endpoint: str, tmp_path: Path
) -> None:
    bucket = "comptoir-prod-widget-123456789012-eu-west-1"
    s3 = boto3.client("s3", region_name="eu-west-1", endpoint_url=moto_endpoint)
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    web = tmp_path / "dist"
    web.mkdir()
    (web / "widget.js").write_text("/* loader */")
    (web / "panel.0123abcd45.js").write_text("/* panel */")
    (web / "manifest.json").write_text(json.dumps({"loader": "dist/widget.js"}))
    result = subprocess.run(
        [sys.executable, str(ROOT / "infra" / "aws" / "after_deploy.py"), "--info-file", str(INFO),
         "--publish-web", "--web-dir", str(web), "--endpoint-url", moto_endpoint],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    loader = s3.head_object(Bucket=bucket, Key="widget/widget.js")
    assert loader["ContentType"] == "text/javascript; charset=utf-8"
    assert loader["CacheControl"] == "public, max-age=300"
    panel = s3.head_object(Bucket=bucket, Key="widget/panel.0123abcd45.js")
    assert panel["CacheControl"] == "public, max-age=31536000, immutable"
    assert f'<script src="{CDN}/widget/widget.js"' in result.stdout
    assert "console's files are not published" in result.stderr  # no web/dist/admin: skipped
    assert f"console  {CDN}/admin/" in result.stdout


def test_publishes_the_console_under_admin_and_not_with_the_widget(
    moto_endpoint: str, tmp_path: Path
) -> None:
    bucket = "comptoir-prod-widget-console-check"  # its own: moto is shared by the session
    info = tmp_path / "info.txt"
    info.write_text(INFO.read_text().replace("comptoir-prod-widget-123456789012-eu-west-1", bucket))
    s3 = boto3.client("s3", region_name="eu-west-1", endpoint_url=moto_endpoint)
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    web = tmp_path / "dist"
    (web / "admin").mkdir(parents=True)
    (web / "widget.js").write_text("/* loader */")
    (web / "admin" / "index.html").write_text("<!doctype html><title>Comptoir</title>")
    (web / "admin" / "console.89abcdef01.js").write_text("/* console */")
    result = subprocess.run(
        [sys.executable, str(ROOT / "infra" / "aws" / "after_deploy.py"), "--info-file", str(info),
         "--publish-web", "--web-dir", str(web), "--endpoint-url", moto_endpoint],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert keys == {"widget/widget.js", "admin/index.html", "admin/console.89abcdef01.js"}
    index = s3.head_object(Bucket=bucket, Key="admin/index.html")
    assert index["ContentType"] == "text/html; charset=utf-8"
    assert index["CacheControl"] == "public, max-age=300"  # a release shows within minutes
    script = s3.head_object(Bucket=bucket, Key="admin/console.89abcdef01.js")
    assert script["CacheControl"] == "public, max-age=31536000, immutable"


def test_the_secret_skeleton_and_its_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert secrets.main(["--stage", "prod"]) == 0
    out = capsys.readouterr().out
    skeleton = json.loads(out[out.index("{") : out.index("}") + 1])
    assert skeleton == dict.fromkeys(SECRET_NAMES, "")
    assert "aws secretsmanager create-secret --name comptoir/prod" in out
    assert "secretsRevision" in out


def test_the_secret_document_from_an_env_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = tmp_path / ".env.prod"
    env.write_text("WHATSAPP_APP_SECRET='s3cr3t'\nLOG_LEVEL=DEBUG\n# comment\n")
    assert secrets.main(["--stage", "prod", "--from", str(env)]) == 0
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert document["WHATSAPP_APP_SECRET"] == "s3cr3t"
    assert set(document) == set(SECRET_NAMES)
    assert "LOG_LEVEL" in captured.err and "s3cr3t" not in captured.err


def test_the_secret_check_names_missing_keys_and_no_value(
    moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    client = boto3.client("secretsmanager", region_name="eu-west-1", endpoint_url=moto_endpoint)
    complete = dict.fromkeys(SECRET_NAMES, "")
    complete["WHATSAPP_APP_SECRET"] = "s3cr3t-value"
    client.create_secret(Name="comptoir/checked", SecretString=json.dumps(complete))
    args = ["--stage", "checked", "--check", "--region", "eu-west-1", "--endpoint-url"]
    assert secrets.main([*args, moto_endpoint]) == 0
    del complete["TELEGRAM_BOT_TOKEN"]
    client.put_secret_value(SecretId="comptoir/checked", SecretString=json.dumps(complete))
    assert secrets.main([*args, moto_endpoint]) == 1
    captured = capsys.readouterr()
    assert "missing key TELEGRAM_BOT_TOKEN" in captured.err
    assert "s3cr3t-value" not in captured.out + captured.err
    assert secrets.main(["--stage", "absent", *args[2:], moto_endpoint]) == 1
    assert "ResourceNotFoundException" in capsys.readouterr().err
