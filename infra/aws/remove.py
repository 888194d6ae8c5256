"""Empty a stage's widget bucket (every object version and delete marker) so that
`osls remove` can delete it: CloudFormation refuses to delete a non-empty bucket, and the
widget bucket is versioned. `make remove STAGE=dev` runs this, then `npx osls remove`.

The bucket is the stack's `WidgetBucketName` output. A stage whose template retains the bucket
(prod: `dataRetention: Retain`) is left untouched: CloudFormation keeps that bucket, and its
widget with it.
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


def stack_name(stage: str) -> str:
    return f"{SERVICE}-{stage}"


def bucket_to_empty(cloudformation: Any, stage: str) -> str | None:
    """The stage's widget bucket if removing the stack deletes it, else None (no stack, no
    bucket output, or a bucket the template retains)."""
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name(stage))["Stacks"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    bucket = outputs.get("WidgetBucketName")
    if bucket is None:
        return None
    body = cloudformation.get_template(StackName=stack_name(stage))["TemplateBody"]
    template = json.loads(body) if isinstance(body, str) else body
    policy = template["Resources"]["WidgetBucket"].get("DeletionPolicy", "Delete")
    return bucket if policy == "Delete" else None


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
    bucket = bucket_to_empty(cloudformation, args.stage)
    if bucket is None:
        print(f"{stack_name(args.stage)}: no widget bucket to empty", file=sys.stderr)
        return 0
    deleted = empty_bucket(session.client("s3", endpoint_url=args.endpoint_url), bucket)
    print(f"{bucket}: deleted {deleted} object versions and delete markers", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
