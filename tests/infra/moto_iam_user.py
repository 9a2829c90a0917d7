"""Creates an IAM user on a moto server whose only permissions are a function's policy.

The least-privilege run of the Lambda functions (crates/ludex-lambda/tests/least_privilege.rs)
calls this while the server does not enforce IAM yet. It renders the function's
`policy.json.tftpl` exactly as Terraform does (policy_templates), for the test's bucket,
table and SSM parameter, optionally without one action, attaches it to a new user and prints
the user's access key as JSON:

    python moto_iam_user.py ENDPOINT FUNCTION BUCKET TABLE PARAMETER USER [--without ACTION]
    -> {"access_key_id": ..., "secret_access_key": ..., "actions": [...]}

`actions` lists the actions the function's code calls itself, the ones the run takes away in
turn. The others are used by the Lambda service on the role's behalf and cannot be exercised
here (docs/deploy.md says which and why).
"""

from __future__ import annotations

import json
import sys

import boto3

from policy_templates import policy_template, render

# The moto account and the region the functions run in under the emulator.
ACCOUNT = "123456789012"
REGION = "us-east-1"

# Actions the Lambda service (not the function's code) uses with the role: writing the
# function's logs and traces, the dead-letter queue of asynchronous invocations, the network
# interfaces of a function in a VPC, and KMS for the bucket's and table's server-side
# encryption, which S3 and DynamoDB call themselves.
SERVICE_PREFIXES = ("logs:", "xray:", "sqs:", "ec2:", "kms:")

# moto checks the resource of S3 actions, but only the action of DynamoDB, SSM and Secrets
# Manager calls (it asks about "*"): their statements are handed to it with Resource "*".
# The resource scoping of those statements is kept by the static tests
# (test_function_policies.py).
ACTION_ONLY_PREFIXES = ("dynamodb:", "ssm:", "secretsmanager:")


def variables(bucket: str, table: str, parameter: str) -> dict:
    arn = f"arn:aws:{{}}:{REGION}:{ACCOUNT}:{{}}"
    return {
        "bucket_arn": f"arn:aws:s3:::{bucket}",
        "upload_prefix": "uploads/",
        "rejected_prefix": "rejected/",
        "covers_prefix": "covers/",
        "uses_dynamodb": True,
        "dynamodb_table_arn": arn.format("dynamodb", f"table/{table}"),
        "password_secret_arn": "",
        "api_keys_parameter_arn": arn.format("ssm", f"parameter{parameter}"),
        # Widened to "*" with every other SSM resource (see for_moto).
        "session_secret_parameter_arn": arn.format("ssm", f"parameter{parameter}-session-secret"),
        "kms_key_arn": arn.format("kms", "key/1234abcd-12ab-34cd-56ef-1234567890ab"),
        "log_group_arn": arn.format("logs", "log-group:/aws/lambda/ludex-test"),
        "dlq_arn": arn.format("sqs", "ludex-test-dlq"),
        "in_vpc": False,
        "subnet_arns": [],
        "security_group_arns": [],
        "network_interfaces_arn": arn.format("ec2", "network-interface/*"),
    }


def actions_of(statement: dict) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def for_moto(policy: dict, removed: str | None) -> dict:
    """The policy without `removed`, with the resources moto cannot check widened to "*"."""
    statements = []
    for statement in policy["Statement"]:
        kept = [a for a in actions_of(statement) if a != removed]
        if not kept:
            continue
        statement = {**statement, "Action": kept}
        if all(a.startswith(ACTION_ONLY_PREFIXES) for a in kept):
            statement["Resource"] = "*"
        statements.append(statement)
    return {**policy, "Statement": statements}


def main(argv: list[str]) -> None:
    endpoint, function, bucket, table, parameter, user = argv[:6]
    removed = argv[7] if len(argv) > 7 and argv[6] == "--without" else None
    policy = render(policy_template(function), variables(bucket, table, parameter))
    code_actions = sorted(
        {a for s in policy["Statement"] for a in actions_of(s) if not a.startswith(SERVICE_PREFIXES)}
    )
    iam = boto3.client(
        "iam",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="function", PolicyDocument=json.dumps(for_moto(policy, removed)))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    print(
        json.dumps(
            {
                "access_key_id": key["AccessKeyId"],
                "secret_access_key": key["SecretAccessKey"],
                "actions": code_actions,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])
