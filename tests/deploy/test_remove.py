"""`make remove`'s first step (infra/aws/remove.py) against moto's S3 and CloudFormation: the
widget bucket is versioned, so CloudFormation can delete it only once every version and delete
marker is gone."""

from __future__ import annotations

import json
import subprocess
import uuid
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.deploy.conftest import ROOT
from tests.deploy.test_after_deploy import load

remove = load("infra/aws/remove.py")


def _client(service: str, endpoint: str) -> Any:
    return boto3.client(service, region_name="eu-west-1", endpoint_url=endpoint)


def _widget_stack(endpoint: str, deletion_policy: str) -> tuple[str, str]:
    """A stack shaped like the stage's: a versioned WidgetBucket and its output."""
    stage, buckets = _stage_stack(endpoint, deletion_policy)
    return stage, buckets["WidgetBucket"]


def _stage_stack(
    endpoint: str, deletion_policy: str, data_policy: str | None = None
) -> tuple[str, dict[str, str]]:
    """The stage's buckets: the versioned WidgetBucket, the DataBucket (its own policy), and
    their outputs."""
    stage = f"t{uuid.uuid4().hex[:8]}"
    buckets = {"WidgetBucket": f"comptoir-{stage}-widget", "DataBucket": f"comptoir-{stage}-data"}
    policies = {"WidgetBucket": deletion_policy, "DataBucket": data_policy or deletion_policy}
    template = {
        "Resources": {
            resource: {
                "Type": "AWS::S3::Bucket",
                "DeletionPolicy": policies[resource],
                "Properties": {"BucketName": name}
                | ({"VersioningConfiguration": {"Status": "Enabled"}}
                   if resource == "WidgetBucket" else {}),
            }
            for resource, name in buckets.items()
        },
        "Outputs": {
            f"{resource}Name": {"Value": {"Ref": resource}} for resource in buckets
        },
    }  # fmt: skip
    _client("cloudformation", endpoint).create_stack(
        StackName=f"comptoir-{stage}", TemplateBody=json.dumps(template)
    )
    # moto's stack creates the bucket but ignores its VersioningConfiguration.
    _client("s3", endpoint).put_bucket_versioning(
        Bucket=buckets["WidgetBucket"], VersioningConfiguration={"Status": "Enabled"}
    )
    return stage, buckets


def _publish_twice_and_delete_one(s3: Any, bucket: str) -> None:
    """What publishing the widget twice leaves: two versions of each file, and a delete marker
    for a file the second build no longer has."""
    for build in ("one", "two"):
        for key in ("widget/loader.js", "widget/manifest.json", "widget/app.abc.js"):
            s3.put_object(Bucket=bucket, Key=key, Body=f"{build} {key}".encode())
    s3.delete_object(Bucket=bucket, Key="widget/app.abc.js")


def _versions(s3: Any, bucket: str) -> int:
    listing = s3.list_object_versions(Bucket=bucket)
    return len(listing.get("Versions", [])) + len(listing.get("DeleteMarkers", []))


def test_empty_bucket_deletes_every_version_and_delete_marker(moto_endpoint: str) -> None:
    s3 = _client("s3", moto_endpoint)
    bucket = f"comptoir-test-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    _publish_twice_and_delete_one(s3, bucket)
    assert _versions(s3, bucket) == 7  # 6 versions, 1 delete marker
    with pytest.raises(ClientError, match="BucketNotEmpty"):  # why a bare osls remove fails
        s3.delete_bucket(Bucket=bucket)

    assert remove.empty_bucket(s3, bucket) == 7
    assert _versions(s3, bucket) == 0
    s3.delete_bucket(Bucket=bucket)  # what CloudFormation does next: it now succeeds
    assert remove.empty_bucket(s3, bucket) == 0  # gone: nothing to do, no error


def test_empty_bucket_pages_past_one_delete_call(moto_endpoint: str) -> None:
    s3 = _client("s3", moto_endpoint)
    bucket = f"comptoir-test-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for version in range(3):
        for n in range(4):
            s3.put_object(Bucket=bucket, Key=f"widget/{n}.js", Body=f"{version}".encode())
    assert remove.empty_bucket(s3, bucket, batch_size=5) == 12  # three DeleteObjects calls
    assert _versions(s3, bucket) == 0


def test_main_empties_the_stacks_widget_bucket(moto_endpoint: str) -> None:
    stage, bucket = _widget_stack(moto_endpoint, "Delete")
    s3 = _client("s3", moto_endpoint)
    _publish_twice_and_delete_one(s3, bucket)
    assert _versions(s3, bucket) == 7

    assert remove.main(["--stage", stage, "--endpoint-url", moto_endpoint]) == 0
    assert _versions(s3, bucket) == 0


def test_main_empties_the_data_bucket_too_unless_retained(moto_endpoint: str) -> None:
    """The catalogue snapshots make the data bucket non-empty: CloudFormation could not delete
    it either."""
    s3 = _client("s3", moto_endpoint)
    stage, buckets = _stage_stack(moto_endpoint, "Delete")
    s3.put_object(Bucket=buckets["DataBucket"], Key="catalog/shop/1-ab.json.gz", Body=b"x")
    _publish_twice_and_delete_one(s3, buckets["WidgetBucket"])
    assert remove.main(["--stage", stage, "--endpoint-url", moto_endpoint]) == 0
    assert _versions(s3, buckets["DataBucket"]) == _versions(s3, buckets["WidgetBucket"]) == 0

    stage, buckets = _stage_stack(moto_endpoint, "Delete", data_policy="Retain")
    s3.put_object(Bucket=buckets["DataBucket"], Key="catalog/shop/1-ab.json.gz", Body=b"x")
    assert remove.main(["--stage", stage, "--endpoint-url", moto_endpoint]) == 0
    assert _versions(s3, buckets["DataBucket"]) == 1  # kept, with what it holds


def test_main_without_a_stack_does_nothing(moto_endpoint: str) -> None:
    assert remove.main(["--stage", "never-deployed", "--endpoint-url", moto_endpoint]) == 0


def test_main_leaves_a_retained_bucket_and_its_widget(moto_endpoint: str) -> None:
    stage, bucket = _widget_stack(moto_endpoint, "Retain")
    s3 = _client("s3", moto_endpoint)
    _publish_twice_and_delete_one(s3, bucket)

    assert remove.main(["--stage", stage, "--endpoint-url", moto_endpoint]) == 0
    assert _versions(s3, bucket) == 7


def _make_dry_run(*args: str) -> list[str]:
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    # Run under `make test`, make would print "Entering/Leaving directory" around the commands.
    return [line.strip() for line in result.stdout.splitlines()]


def test_make_remove_empties_the_bucket_then_removes_the_stack() -> None:
    lines = _make_dry_run("remove", "STAGE=dev")
    empty = lines.index(".venv/bin/python infra/aws/remove.py --stage dev --region eu-west-1")
    assert lines[empty + 1] == "npx osls remove --stage dev --region eu-west-1"


def test_make_logs_follows_a_function() -> None:
    assert _make_dry_run("logs", "STAGE=prod")[-1] == (
        "npx osls logs -f chat --stage prod --region eu-west-1 --tail"
    )
    assert "-f worker" in _make_dry_run("logs", "FUNCTION=worker")[-1]


def test_make_package_then_lint_template() -> None:
    lines = _make_dry_run("lint-template", "STAGE=ci")
    package = lines.index("npx osls package --stage ci --region eu-west-1")
    lint = next(i for i, line in enumerate(lines) if line.startswith(".venv/bin/cfn-lint"))
    assert package < lint
    assert lines[lint].endswith(".serverless/cloudformation-template-update-stack.json")
    assert "W3005" in lines[lint]  # what tests/deploy/test_aws_package.py accepts, no more
    assert "cfn-lint" in (ROOT / "requirements-dev.txt").read_text()


def test_make_offline_is_the_dev_server_on_the_embedded_defaults() -> None:
    lines = _make_dry_run("offline")
    assert lines[-2:] == [
        ".venv/bin/python -m shared seed-demo",
        ".venv/bin/python -m shared serve",
    ]
