"""docs/architecture.md describes the Terraform as it is.

The Mermaid diagram and the node table below it must agree with each other,
every address in the table must exist in infra/terraform, and every resource of
a kind that shapes the system (functions, data stores, roles, endpoints, …) must
be in the table. Settings resources (versioning, public access blocks, routes,
rules) may be left out.
"""

from __future__ import annotations

import re

from test_terraform_conventions import REPO_ROOT, TERRAFORM_ROOT, named_blocks, parse_dir

DOC = REPO_ROOT / "docs" / "architecture.md"

# Resource types every one of which must appear in the node table.
SYSTEM_RESOURCE_TYPES = {
    "aws_apigatewayv2_api",
    "aws_apigatewayv2_domain_name",
    "aws_apigatewayv2_stage",
    "aws_cloudwatch_dashboard",
    "aws_cloudwatch_log_group",
    "aws_cloudwatch_metric_alarm",
    "aws_codedeploy_app",
    "aws_codedeploy_deployment_group",
    "aws_db_instance",
    "aws_dynamodb_table",
    "aws_ecr_repository",
    "aws_iam_openid_connect_provider",
    "aws_iam_role",
    "aws_kinesis_firehose_delivery_stream",
    "aws_kms_key",
    "aws_lambda_alias",
    "aws_lambda_function",
    "aws_lambda_function_event_invoke_config",
    "aws_lambda_permission",
    "aws_s3_bucket",
    "aws_s3_bucket_notification",
    "aws_security_group",
    "aws_sns_topic",
    "aws_sqs_queue",
    "aws_ssm_parameter",
    "aws_vpc",
    "aws_vpc_endpoint",
}
EXTERNAL_ACTORS = {"client", "uploader", "github"}
ADDRESS = re.compile(r"`(?:module\.(\w+)|(bootstrap))\.(aws_\w+)\.(\w+)`")


def mermaid_block() -> str:
    match = re.search(r"```mermaid\n(.*?)```", DOC.read_text(), re.S)
    assert match, "docs/architecture.md has no mermaid block"
    return match.group(1)


def diagram_nodes() -> set[str]:
    """Node ids declared with a shape: id[...], id(...), id{{...}}, id[(...)], id([...])."""
    return set(re.findall(r"^\s*(\w+)\s*[\[\(\{]", mermaid_block(), re.M)) - {"subgraph"}


def node_table() -> dict[str, set[tuple[str, str, str]]]:
    rows = {}
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and re.fullmatch(r"`\w+`", cells[0]):
            rows[cells[0].strip("`")] = {
                (module or "bootstrap", kind, name) for module, boot, kind, name in ADDRESS.findall(cells[1])
            }
    return rows


def terraform_resources() -> set[tuple[str, str, str]]:
    found = set()
    directories = [(d.name, d) for d in (TERRAFORM_ROOT / "modules").iterdir() if d.is_dir()]
    directories.append(("bootstrap", TERRAFORM_ROOT / "bootstrap"))
    for module, directory in directories:
        for kind, resources in named_blocks(parse_dir(directory), "resource"):
            found.update((module, kind, name) for name in resources)
    return found


def test_every_diagram_node_is_in_the_table_and_back():
    table = node_table()
    assert sorted(diagram_nodes() - EXTERNAL_ACTORS - set(table)) == []
    assert sorted(set(table) - diagram_nodes()) == []


def test_every_address_in_the_table_exists_in_terraform():
    resources = terraform_resources()
    listed = set().union(*node_table().values())
    assert sorted(listed - resources) == []


def test_every_system_resource_is_in_the_table():
    listed = set().union(*node_table().values())
    missing = {r for r in terraform_resources() if r[1] in SYSTEM_RESOURCE_TYPES and r[0] != "service"} - listed
    assert sorted(missing) == []
