"""The stage's secret in AWS Secrets Manager: one JSON object, one key per variable.

    python infra/aws/secrets.py --stage prod                 # the commands to create/update it
    python infra/aws/secrets.py --stage prod --from .env.prod | \\
        aws secretsmanager put-secret-value --secret-id comptoir/prod --secret-string file:///dev/stdin
    python infra/aws/secrets.py --stage prod --check         # before a deploy (make deploy)

serverless.yml refers to each key with a CloudFormation dynamic reference
(``{{resolve:secretsmanager:comptoir/<stage>:SecretString:NAME}}``), so every key must exist,
empty when unused (an empty value means "not set" to the functions). ``--from`` reads a
KEY=VALUE file (the format of .env) and writes the JSON to stdout, for a pipe: values are never
printed otherwise. ``--check`` reads the secret (boto3, your AWS credentials) and names the
missing keys, so a deploy does not fail halfway in CloudFormation; it prints no value.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# Run as a script, this folder would come first on the path and this file would shadow the
# standard library's ``secrets``: put the project's root there instead (for ``shared``).
sys.path[0] = str(Path(__file__).resolve().parents[2])
from shared.exceptions import ConfigError  # noqa: E402
from shared.settings import read_env_file  # noqa: E402

NAMES: list[str] = json.loads(
    (Path(__file__).resolve().parent.parent / "secret-names.json").read_text()
)


def secret_name(stage: str) -> str:
    return f"comptoir/{stage}"


def secret_document(values: dict[str, str]) -> dict[str, str]:
    """Every secret name, with its value from ``values`` or empty."""
    return {name: values.get(name, "") for name in NAMES}


def instructions(stage: str) -> str:
    name = secret_name(stage)
    skeleton = json.dumps(secret_document({}), indent=2)
    return f"""Secret {name}: a JSON object with these keys (empty when unused):

{skeleton}

Create it once (values from a KEY=VALUE file that stays out of git, e.g. .env.{stage}):
  python infra/aws/secrets.py --stage {stage} --from .env.{stage} | \\
    aws secretsmanager create-secret --name {name} --secret-string file:///dev/stdin

Change it later:
  python infra/aws/secrets.py --stage {stage} --from .env.{stage} | \\
    aws secretsmanager put-secret-value --secret-id {name} --secret-string file:///dev/stdin
then redeploy with a new revision, so CloudFormation reads it again:
  make deploy STAGE={stage} OSLS_ARGS=--param=secretsRevision=$(date +%s)
"""


def check(stage: str, region: str | None, endpoint_url: str | None = None) -> list[str]:
    """Problems with the stage's secret (names only, never values); empty when it is usable."""
    import boto3  # only here: the other commands run without AWS
    from botocore.exceptions import BotoCoreError, ClientError

    client = boto3.client("secretsmanager", region_name=region, endpoint_url=endpoint_url)
    try:
        raw = client.get_secret_value(SecretId=secret_name(stage))["SecretString"]
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        return [f"secret {secret_name(stage)}: {code or 'unreadable'}"]
    except BotoCoreError as exc:
        return [f"secret {secret_name(stage)}: {type(exc).__name__}"]
    try:
        document = json.loads(raw)
    except ValueError:
        return [f"secret {secret_name(stage)} is not a JSON object"]
    if not isinstance(document, dict):
        return [f"secret {secret_name(stage)} is not a JSON object"]
    missing = [name for name in NAMES if name not in document]
    wrong = [name for name in NAMES if name in document and not isinstance(document[name], str)]
    problems = [f"missing key {name} (add it, empty if unused)" for name in missing]
    return problems + [f"key {name} is not a string" for name in wrong]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", default="dev")
    parser.add_argument("--from", dest="source", type=Path, help="KEY=VALUE file to read")
    parser.add_argument("--check", action="store_true", help="check the secret in AWS")
    parser.add_argument("--region", help="default: your AWS configuration's")
    parser.add_argument("--endpoint-url", help="Secrets Manager endpoint (tests: moto)")
    args = parser.parse_args(argv)
    if args.check:
        problems = check(args.stage, args.region, args.endpoint_url)
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        if problems:
            print(instructions(args.stage), file=sys.stderr)
            return 1
        print(f"secret {secret_name(args.stage)}: every key is there")
        return 0
    if args.source is None:
        print(instructions(args.stage))
        return 0
    try:
        values = read_env_file(args.source)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    unknown = sorted(k for k in values if k not in NAMES)
    if unknown:  # other settings in the same file are fine, but say they are left out
        print(f"not secrets, left out: {', '.join(unknown)}", file=sys.stderr)
    json.dump(secret_document(values), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
