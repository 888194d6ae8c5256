"""Empty a stage's buckets (every object version and delete marker) so that `osls remove` can
delete them: CloudFormation refuses to delete a non-empty bucket. The widget bucket (the widget
and the console's files) is versioned; the data bucket holds the catalogue snapshots.
`make remove STAGE=dev` runs this, then `npx osls remove`.

The buckets are the stack's `WidgetBucketName` and `DataBucketName` outputs. A bucket the
template retains (prod: `dataRetention: Retain`) is left untouched: CloudFormation keeps it, and
its objects with it.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import boto3
from botocore.exceptions import ClientError

SERVICE = "comptoir"
# DeleteObjects takes at most 1,000 keys per call.
DELETE_BATCH = 1000
# The stack's buckets: the output naming each, and its resource (whose DeletionPolicy counts).
BUCKETS = {"WidgetBucketName": "WidgetBucket", "DataBucketName": "DataBucket"}


def stack_name(stage: str) -> str:
    return f"{SERVICE}-{stage}"


def buckets_to_empty(cloudformation: Any, stage: str) -> list[str]:
    """The stage's buckets that removing the stack deletes (none without a stack; a bucket
    without its output, or one the template retains, is not listed)."""
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name(stage))["Stacks"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return []
        raise
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    if not set(BUCKETS) & set(outputs):
        return []
    body = cloudformation.get_template(StackName=stack_name(stage))["TemplateBody"]
    resources = (json.loads(body) if isinstance(body, str) else body)["Resources"]
    return [
        outputs[output]
        for output, resource in BUCKETS.items()
        if output in outputs and resources[resource].get("DeletionPolicy", "Delete") == "Delete"
    ]


def empty_bucket(s3: Any, bucket: str, batch_size: int = DELETE_BATCH) -> int:
    """Delete every version and delete marker in the bucket, batch_size per call; the number
    deleted. A bucket that is already gone counts as empty."""
    deleted = 0
    try:
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
            entries = [
                {"Key": v["Key"], "VersionId": v["VersionId"]}
                for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
            ]
            for start in range(0, len(entries), batch_size):
                batch = entries[start : start + batch_size]
                answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
                if answer.get("Errors"):
                    first = answer["Errors"][0]
                    raise SystemExit(
                        f"could not delete {first['Key']} from {bucket}: {first['Message']}"
                    )
                deleted += len(batch)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
            return deleted
        raise
    return deleted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", default="dev")
    parser.add_argument("--region", default="eu-west-1")
    parser.add_argument("--endpoint-url", help="AWS endpoint (tests: moto)")
    args = parser.parse_args(argv)
    session = boto3.session.Session(region_name=args.region)
    cloudformation = session.client("cloudformation", endpoint_url=args.endpoint_url)
    buckets = buckets_to_empty(cloudformation, args.stage)
    if not buckets:
        print(f"{stack_name(args.stage)}: no bucket to empty", file=sys.stderr)
        return 0
    s3 = session.client("s3", endpoint_url=args.endpoint_url)
    for bucket in buckets:
        deleted = empty_bucket(s3, bucket)
        print(f"{bucket}: deleted {deleted} object versions and delete markers", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
