"""Each function's IAM policy has one source: a JSON template that Terraform renders.

`policy_templates.render` renders `modules/<function>/policy.json.tftpl` the
way `templatefile` does, so these tests read the policy a function really
gets, for each shape of the environment (DynamoDB or PostgreSQL, with or
without the VPC), and a later test can hand the same document to another IAM
engine. The Terraform call and the template must name the same variables.
"""

from __future__ import annotations

import re

import pytest

from iam_statements import json_statements
from policy_templates import TemplateError, policy_template, render, render_text
from test_terraform_conventions import STAR_RESOURCE_ACTIONS, TERRAFORM_ROOT

FUNCTIONS = ("api_function", "ingest_function", "release_hook")
ARN = "arn:aws:{}:eu-west-1:123456789012:{}"
COMMON = {
    "bucket_arn": "arn:aws:s3:::ludex-dev-catalog",
    "upload_prefix": "uploads/",
    "rejected_prefix": "rejected/",
    "covers_prefix": "covers/",
    "dynamodb_table_arn": ARN.format("dynamodb", "table/ludex-dev-catalog"),
    "kms_key_arn": ARN.format("kms", "key/1234abcd-12ab-34cd-56ef-1234567890ab"),
    "network_interfaces_arn": ARN.format("ec2", "network-interface/*"),
    "api_keys_parameter_arn": ARN.format("ssm", "parameter/ludex/dev/api-keys"),
    "session_secret_parameter_arn": ARN.format("ssm", "parameter/ludex/dev/session-secret"),
    "dlq_arn": ARN.format("sqs", "ludex-dev-ingest-dlq"),
}
SHAPES = {
    "dynamodb": {"uses_dynamodb": True, "password_secret_arn": "", "in_vpc": False, "subnet_arns": [], "security_group_arns": []},
    "postgres-in-vpc": {
        "uses_dynamodb": False,
        "password_secret_arn": ARN.format("secretsmanager", "secret:rds!db-1234-AbCdEf"),
        "in_vpc": True,
        "subnet_arns": [ARN.format("ec2", "subnet/subnet-1"), ARN.format("ec2", "subnet/subnet-2")],
        "security_group_arns": [ARN.format("ec2", "security-group/sg-1")],
    },
}
HOOK = {
    "deployment_groups_arn": ARN.format("codedeploy", "deploymentgroup:ludex-dev/*"),
    "application_arn": ARN.format("codedeploy", "application:ludex-dev"),
    "api_function_arn": ARN.format("lambda", "function:ludex-dev-api"),
    "ingest_function_arn": ARN.format("lambda", "function:ludex-dev-ingest"),
    "release_alarms_arn": ARN.format("cloudwatch", "alarm:ludex-dev-*-release-*"),
    "canary_objects_arn": "arn:aws:s3:::ludex-dev-catalog/uploads/canary/*",
    "canary_key_parameter_arn": ARN.format("ssm", "parameter/ludex/dev/canary-api-key"),
    "kms_key_arn": COMMON["kms_key_arn"],
    "log_group_arn": ARN.format("logs", "log-group:/aws/lambda/ludex-dev-release-hook"),
}


def variables_for(function: str, shape: str) -> dict:
    if function == "release_hook":
        return dict(HOOK)
    return {
        **COMMON,
        **SHAPES[shape],
        "log_group_arn": ARN.format("logs", f"log-group:/aws/lambda/ludex-dev-{function.split('_')[0]}"),
    }


def template_variables(function: str) -> set[str]:
    text = policy_template(function).read_text()
    loops = set(re.findall(r"%\{\s*for\s+(\w+)\s+in", text))
    names = set(re.findall(r"\$\{\s*(\w+)\s*\}", text)) | set(re.findall(r"%\{\s*(?:if|for\s+\w+\s+in)\s+(\w+)\s*\}", text))
    return names - loops


def terraform_variables(function: str) -> set[str]:
    text = (TERRAFORM_ROOT / "modules" / function / "main.tf").read_text()
    (call,) = re.findall(r'templatefile\("\$\{path\.module\}/policy\.json\.tftpl", \{\n(.*?)\n\s*\}\)', text, re.S)
    return set(re.findall(r"^\s*(\w+)\s*=", call, re.M))


def wildcard_problems(statements) -> list[str]:
    problems = []
    for s in statements:
        if "*" in s.actions or any(a.endswith(":*") for a in s.actions):
            problems.append(f"{s.where} {s.sid}: wildcard action {s.actions}")
        if "*" in s.resources and [a for a in s.actions if a not in STAR_RESOURCE_ACTIONS]:
            problems.append(f"{s.where} {s.sid}: {s.actions} on Resource '*'")
    return problems


@pytest.mark.parametrize("function", FUNCTIONS)
def test_terraform_and_the_tests_render_the_template_with_the_same_variables(function):
    assert terraform_variables(function) == template_variables(function)


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_function_policy_renders_to_json_without_wildcards(function, shape):
    policy = render(policy_template(function), variables_for(function, shape))
    assert policy["Version"] == "2012-10-17"
    statements = json_statements(policy, f"{function}/{shape}")
    assert len({s.sid for s in statements}) == len(statements), "one statement per need, each named"
    assert wildcard_problems(statements) == []


def test_the_store_and_the_network_decide_which_statements_a_function_gets():
    sids = lambda shape: [s["Sid"] for s in render(policy_template("api_function"), variables_for("api_function", shape))["Statement"]]  # noqa: E731
    assert "ReadWriteCatalogTable" in sids("dynamodb") and "ReadStorePassword" not in sids("dynamodb")
    assert "ReadStorePassword" in sids("postgres-in-vpc") and "ReadWriteCatalogTable" not in sids("postgres-in-vpc")
    vpc = render(policy_template("ingest_function"), variables_for("ingest_function", "postgres-in-vpc"))
    (enis,) = [s for s in vpc["Statement"] if s["Sid"] == "ManageOwnNetworkInterfaces"]
    assert enis["Resource"] == [*SHAPES["postgres-in-vpc"]["subnet_arns"], *SHAPES["postgres-in-vpc"]["security_group_arns"], COMMON["network_interfaces_arn"]]
    ingest = render(policy_template("ingest_function"), variables_for("ingest_function", "dynamodb"))
    (reads,) = [s for s in ingest["Statement"] if s["Sid"] == "ReadUploads"]
    assert reads["Resource"] == "arn:aws:s3:::ludex-dev-catalog/uploads/*"


def test_the_renderer_refuses_what_it_does_not_understand():
    with pytest.raises(TemplateError, match="not set"):
        render_text("${missing}", {})
    with pytest.raises(TemplateError, match="unsupported"):
        render_text("${upper(x)}", {"x": "a"})
    with pytest.raises(TemplateError, match="boolean"):
        render_text("%{ if x }a%{ endif }", {"x": "true"})
    assert render_text("[%{ for a in xs }\"${a}\", %{ endfor }\"z\"]", {"xs": ["x", "y"]}) == '["x", "y", "z"]'
    assert render_text("%{ if b }yes%{ else }no%{ endif }", {"b": False}) == "no"
