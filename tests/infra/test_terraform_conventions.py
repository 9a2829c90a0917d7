"""Conventions every Terraform file in infra/terraform keeps.

`terraform validate` needs providers that cannot be downloaded on every build
machine, so these tests read the HCL directly and check what a reviewer would:
typed and described variables, the module layout, least-privilege IAM, a log
group and an alias per function, S3 notifications that invoke aliases, output
names and provider pins. Each checker is a plain function that returns the
problems it found, so the negative tests at the bottom can prove it catches them.

Two packages ship a `hcl2` module (python-hcl2, and checkov's bc-python-hcl2);
whichever is importable may wrap attribute values in one-element lists and may
keep the quotes of string literals. `scalar` and `flat` read both shapes.
"""

from __future__ import annotations

import re
from pathlib import Path

import hcl2
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
TERRAFORM_ROOT = REPO_ROOT / "infra" / "terraform"
MODULE_DIRS = sorted(p for p in (TERRAFORM_ROOT / "modules").iterdir() if p.is_dir()) + [
    TERRAFORM_ROOT / "bootstrap"
]
ENV_DIRS = sorted(p for p in (TERRAFORM_ROOT / "envs").iterdir() if p.is_dir())
CONFIG_DIRS = MODULE_DIRS + ENV_DIRS
# The upload suffixes the ingest takes, as the Rust code declares them (ludex::inbox).
UPLOAD_SUFFIXES = re.findall(
    r'"(\.[a-z.]+)"',
    re.search(
        r"pub const UPLOAD_SUFFIXES: \[&str; \d+\] = \[(.*?)\];",
        (REPO_ROOT / "crates" / "ludex" / "src" / "inbox.rs").read_text(),
        re.S,
    ).group(1),
)
TF_FILES = sorted(TERRAFORM_ROOT.rglob("*.tf"))

MODULE_FILES = ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md")

# Actions that AWS only accepts with Resource "*", and why.
STAR_RESOURCE_ACTIONS = {
    "xray:PutTraceSegments": "X-Ray has no resource-level permissions",
    "xray:PutTelemetryRecords": "X-Ray has no resource-level permissions",
    "ecr:GetAuthorizationToken": "registry login is account-wide, not per repository",
    "ec2:DescribeNetworkInterfaces": "EC2 describe calls have no resource-level permissions (functions in a VPC)",
    "ec2:DescribeAvailabilityZones": "EC2 describe calls have no resource-level permissions",
    "ec2:Describe*": "EC2 describe calls have no resource-level permissions",
    "kms:CreateKey": "the key to scope to does not exist before the call",
    "kms:ListAliases": "list call without resource-level permissions",
    "logs:DescribeLogGroups": "list call without resource-level permissions",
    "ssm:DescribeParameters": "list call without resource-level permissions (the provider reads parameter metadata with it)",
    "iam:ListOpenIDConnectProviders": "list call without resource-level permissions",
    "kms:TagResource": "tagging a key in CreateKey is authorized before the key exists (tag-conditioned)",
    "secretsmanager:GetRandomPassword": "draws random bytes; there is no resource to scope to",
}
# In a KMS key policy, Resource "*" means "this key" and is the only value AWS accepts.
KEY_POLICY_REASON = "KMS key policies can only name Resource '*', meaning the key itself"

# Outputs start with the noun of the resource they describe.
OUTPUT_NOUNS = (
    "api_function",
    "ingest_function",
    "bucket",
    "log_bucket",
    "dynamodb_table",
    "kms_key",
    "sqs_dlq",
    "ecr_repository",
    "ssm_api_keys_parameter",
    "ssm_canary_api_key_parameter",
    "http_api",
    "cloudwatch",
    "sns_topic",
    "firehose_delivery_stream",
    "codedeploy",
    "vpc",
    "private_subnet",
    "public_subnet",
    "security_group",
    "db_instance",
    "db_security_group",
    "github",
)

# Outputs the CI/CD workflows read from every environment.
WORKFLOW_OUTPUTS = (
    "api_function_name",
    "api_function_alias_name",
    "ingest_function_name",
    "ingest_function_alias_name",
    "ecr_repository_url",
    "http_api_url",
    "codedeploy_app_name",
    "codedeploy_api_deployment_group_name",
    "codedeploy_ingest_deployment_group_name",
    "bucket_name",
    "dynamodb_table_name",
    "github_deploy_role_arn",
    "codedeploy_hook_function_name",
)

# The application's EMF metric names (the contract with the Rust telemetry code).
APP_METRIC_NAMES = {
    "ludex_ingest_records_accepted",
    "ludex_ingest_records_rejected",
    "ludex_ingest_files",
    "ludex_ingest_bytes",
    "ludex_ingest_stage_duration_ms",
    "ludex_ingest_write_retries",
    "ludex_ingest_claims_lost",
    "ludex_api_requests",
    "ludex_api_latency_ms",
}

# Environment variables each function reads (the contract with the Rust configuration).
FUNCTION_ENVIRONMENT = {
    "ingest_function": ("LUDEX_STORE", "LUDEX_BUCKET", "LUDEX_UPLOAD_PREFIX", "LUDEX_LOG_FORMAT", "RUST_LOG"),
    "api_function": (
        "LUDEX_STORE",
        "LUDEX_BUCKET",
        "LUDEX_UPLOAD_PREFIX",
        "LUDEX_API_KEYS_PARAMETER",
        "LUDEX_SESSION_SECRET_PARAMETER",
        "LUDEX_READS_REQUIRE_KEY",
        "LUDEX_CORS_ORIGINS",
        "LUDEX_LOG_FORMAT",
        "RUST_LOG",
        "AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH",
    ),
}


# --- Reading HCL -------------------------------------------------------------------


def parse(text: str) -> dict:
    return hcl2.loads(text)


def parse_dir(directory: Path) -> dict:
    """All top-level items of the .tf files in one directory, merged."""
    merged: dict = {}
    for path in sorted(directory.glob("*.tf")):
        for kind, items in parse(path.read_text()).items():
            merged.setdefault(kind, []).extend(items)
    return merged


def scalar(value):
    """An attribute's value without list wrapping or literal quotes."""
    while isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    return value


def flat(value) -> list:
    """An attribute's value as a flat list of scalars."""
    if value is None:
        return []
    if isinstance(value, list):
        return [item for element in value for item in flat(element)]
    return [scalar(value)]


def body_items(body: dict):
    return {k: v for k, v in body.items() if not k.startswith("__")}


def named_blocks(doc: dict, kind: str, block_type: str | None = None):
    """(type, name, body) for resource/data blocks, or (name, body) for variable/output."""
    for item in doc.get(kind, []):
        for key, value in item.items():
            if block_type is None:
                yield key, value
            elif key == block_type:
                for name, body in value.items():
                    yield name, body


def resources(doc: dict, resource_type: str):
    return list(named_blocks(doc, "resource", resource_type))


def data_sources(doc: dict, data_type: str):
    return list(named_blocks(doc, "data", data_type))


def blocks(body: dict, name: str) -> list[dict]:
    """Nested blocks called `name`, static or `dynamic` (its content)."""
    found = [b for b in body.get(name, []) if isinstance(b, dict)]
    for dynamic in body.get("dynamic", []):
        if name in dynamic:
            spec = dynamic[name]
            found.extend(c for c in spec.get("content", []) if isinstance(c, dict))
    return found


# --- Checkers ---------------------------------------------------------------------------


def variable_problems(doc: dict, where: str) -> list[str]:
    problems = []
    for name, body in named_blocks(doc, "variable"):
        for field in ("type", "description"):
            value = scalar(body.get(field))
            if value in (None, ""):
                problems.append(f"{where}: variable {name} has no {field}")
    return problems


def key_policy_documents(doc: dict) -> set[str]:
    """Names of the aws_iam_policy_document data sources used as KMS key policies."""
    names = set()
    for _, body in resources(doc, "aws_kms_key"):
        match = re.search(r"data\.aws_iam_policy_document\.(\w+)", str(scalar(body.get("policy"))))
        if match:
            names.add(match.group(1))
    return names


JSON_STAR = re.compile(r"""['"]?(Action|Resource)['"]?\s*[:=]\s*(\[[^\]]*['"]\*['"][^\]]*\]|['"]\*['"])""")
JSON_POLICY_RESOURCES = (
    "aws_iam_role_policy",
    "aws_iam_policy",
    "aws_iam_role",
    "aws_s3_bucket_policy",
    "aws_sns_topic_policy",
    "aws_sqs_queue_policy",
    "aws_kms_key",
    "aws_ecr_repository_policy",
)


def iam_problems(doc: dict, where: str) -> list[str]:
    problems = []
    key_policies = key_policy_documents(doc)
    for name, body in data_sources(doc, "aws_iam_policy_document"):
        for statement in blocks(body, "statement"):
            if scalar(statement.get("effect")) == "Deny":
                continue  # a broad Deny takes rights away
            sid = scalar(statement.get("sid")) or "(no sid)"
            actions = flat(statement.get("actions"))
            resources_ = flat(statement.get("resources"))
            label = f"{where}: policy {name} statement {sid}"
            if "*" in actions:
                problems.append(f"{label} allows Action '*'")
            if "*" in resources_ and name not in key_policies:
                unscoped = [a for a in actions if a not in STAR_RESOURCE_ACTIONS]
                if unscoped or not actions:
                    problems.append(f"{label} grants {unscoped or 'everything'} on Resource '*'")
    for resource_type in JSON_POLICY_RESOURCES:
        for name, body in resources(doc, resource_type):
            for field in ("policy", "assume_role_policy"):
                text = str(scalar(body.get(field)) or "")
                if "jsonencode" in text and JSON_STAR.search(text):
                    problems.append(f"{where}: {resource_type}.{name} {field} uses '*' in a jsonencode'd policy")
    return problems


def lambda_problems(doc: dict, where: str) -> list[str]:
    problems = []
    log_groups = {scalar(body.get("name")): body for _, body in resources(doc, "aws_cloudwatch_log_group")}
    alias_targets = {scalar(body.get("function_name")) for _, body in resources(doc, "aws_lambda_alias")}
    for name, body in resources(doc, "aws_lambda_function"):
        function_name = str(scalar(body.get("function_name")))
        log_group = log_groups.get(f"/aws/lambda/{function_name}")
        if log_group is None:
            problems.append(f"{where}: function {name} has no log group /aws/lambda/{function_name}")
        elif scalar(log_group.get("retention_in_days")) is None:
            problems.append(f"{where}: log group of function {name} has no retention_in_days")
        # Functions that CodeDeploy releases publish versions and serve through an alias.
        released = scalar(body.get("publish")) in (True, "true")
        if released and not any(f"aws_lambda_function.{name}." in str(target) for target in alias_targets):
            problems.append(f"{where}: function {name} publishes versions but has no aws_lambda_alias")
        tracing = blocks(body, "tracing_config")
        if not tracing or scalar(tracing[0].get("mode")) != "Active":
            problems.append(f"{where}: function {name} does not have X-Ray tracing Active")
    return problems


def notification_problems(doc: dict, where: str) -> list[str]:
    problems = []
    for name, body in resources(doc, "aws_s3_bucket_notification"):
        for target in blocks(body, "lambda_function"):
            arn = str(scalar(target.get("lambda_function_arn")))
            if "aws_lambda_function." in arn or "alias" not in arn:
                problems.append(f"{where}: notification {name} invokes {arn}, not a function alias")
    for name, body in resources(doc, "aws_lambda_permission"):
        if scalar(body.get("qualifier")) is None:
            problems.append(f"{where}: lambda permission {name} has no qualifier (alias)")
    return problems


def output_problems(doc: dict, where: str) -> list[str]:
    problems = []
    for name, body in named_blocks(doc, "output"):
        if not name.startswith(tuple(f"{noun}_" for noun in OUTPUT_NOUNS)):
            problems.append(f"{where}: output {name} does not start with a resource noun")
        if scalar(body.get("description")) in (None, ""):
            problems.append(f"{where}: output {name} has no description")
    return problems


AWS_PROVIDER_PIN = "~> 6.0"


def lower_bound(constraint: str) -> tuple[int, ...] | None:
    match = re.match(r"^\s*>=\s*(\d+(?:\.\d+)*)", constraint)
    return tuple(int(part) for part in match.group(1).split(".")) if match else None


def version_problems(doc: dict, where: str) -> list[str]:
    problems = []
    terraform_blocks = doc.get("terraform", [])
    if not terraform_blocks:
        return [f"{where}: no terraform block"]
    for block in terraform_blocks:
        required = str(scalar(block.get("required_version")) or "")
        bound = lower_bound(required)
        if bound is None or bound < (1, 6):
            problems.append(f"{where}: required_version {required!r} is not a '>= 1.6' (or higher) lower bound")
        providers = [p for entry in block.get("required_providers", []) for p in body_items(entry).items()]
        if not providers:
            problems.append(f"{where}: no required_providers")
        for provider, spec in providers:
            spec = scalar(spec)
            version = str(scalar(spec.get("version")) or "")
            if scalar(spec.get("source")) == "hashicorp/aws":
                # One major version: a new major changes resources under us only when we move the pin.
                if version != AWS_PROVIDER_PIN:
                    problems.append(f"{where}: hashicorp/aws version {version!r} is not {AWS_PROVIDER_PIN!r}")
            elif lower_bound(version) is None and not version.startswith("~>"):
                problems.append(f"{where}: provider {provider} version {version!r} has no lower bound")
    return problems


def layout_problems(directory: Path, required=MODULE_FILES) -> list[str]:
    return [f"{directory.relative_to(REPO_ROOT)}: missing {f}" for f in required if not (directory / f).is_file()]


# --- Tests over the real configuration -------------------------------------------------


def rel(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT))


@pytest.mark.parametrize("path", TF_FILES, ids=rel)
def test_every_variable_is_typed_and_described(path):
    assert variable_problems(parse(path.read_text()), rel(path)) == []


@pytest.mark.parametrize("directory", MODULE_DIRS, ids=rel)
def test_every_module_has_the_standard_files_and_a_readme(directory):
    assert layout_problems(directory) == []


@pytest.mark.parametrize("directory", ENV_DIRS, ids=rel)
def test_every_environment_has_the_standard_files(directory):
    assert layout_problems(directory) == []


@pytest.mark.parametrize("directory", CONFIG_DIRS, ids=rel)
def test_no_iam_statement_uses_wildcards_beyond_the_listed_exceptions(directory):
    assert iam_problems(parse_dir(directory), rel(directory)) == []


@pytest.mark.parametrize("directory", CONFIG_DIRS, ids=rel)
def test_every_function_has_a_log_group_with_retention_tracing_and_an_alias_when_released(directory):
    assert lambda_problems(parse_dir(directory), rel(directory)) == []


@pytest.mark.parametrize("directory", CONFIG_DIRS, ids=rel)
def test_bucket_notifications_and_invoke_permissions_target_aliases(directory):
    assert notification_problems(parse_dir(directory), rel(directory)) == []


@pytest.mark.parametrize("directory", CONFIG_DIRS, ids=rel)
def test_outputs_are_prefixed_with_a_resource_noun_and_described(directory):
    assert output_problems(parse_dir(directory), rel(directory)) == []


@pytest.mark.parametrize("directory", CONFIG_DIRS, ids=rel)
def test_terraform_and_providers_are_pinned_with_lower_bounds(directory):
    assert version_problems(parse((directory / "versions.tf").read_text()), rel(directory)) == []


def test_providers_are_configured_only_in_root_configurations():
    offenders = [
        rel(path)
        for directory in (TERRAFORM_ROOT / "modules").iterdir()
        for path in directory.glob("*.tf")
        if parse(path.read_text()).get("provider")
    ]
    assert offenders == []


def test_there_is_exactly_one_bucket_notification_and_it_covers_every_upload_suffix():
    notifications = [
        (directory, body)
        for directory in CONFIG_DIRS
        for _, body in resources(parse_dir(directory), "aws_s3_bucket_notification")
    ]
    assert len(notifications) == 1, "aws_s3_bucket_notification is exclusive per bucket"
    _, body = notifications[0]
    targets = blocks(body, "lambda_function")
    suffixes = sorted(scalar(t.get("filter_suffix")) for t in targets)
    assert len(UPLOAD_SUFFIXES) >= 7, UPLOAD_SUFFIXES
    assert suffixes == sorted(UPLOAD_SUFFIXES)
    # S3 refuses rules of one prefix whose suffixes overlap (one ends the other).
    assert [(a, b) for a in suffixes for b in suffixes if a != b and a.endswith(b)] == []
    assert {scalar(t.get("filter_prefix")) for t in targets} == {"${local.upload_prefix}"}


@pytest.mark.parametrize("directory", ENV_DIRS, ids=rel)
def test_environments_expose_the_outputs_the_workflows_read(directory):
    outputs = {name for name, _ in named_blocks(parse_dir(directory), "output")}
    assert sorted(set(WORKFLOW_OUTPUTS) - outputs) == []


@pytest.mark.parametrize("directory", ENV_DIRS, ids=rel)
def test_environments_use_the_s3_backend_with_native_locking_and_no_hard_coded_bucket(directory):
    terraform = parse((directory / "versions.tf").read_text())["terraform"][0]
    backend = scalar(terraform["backend"])
    s3 = scalar(backend["s3"])
    assert scalar(s3.get("use_lockfile")) is True
    assert "bucket" not in s3
    assert "dynamodb_table" not in s3


@pytest.mark.parametrize("module", sorted(FUNCTION_ENVIRONMENT))
def test_functions_receive_the_environment_the_rust_configuration_reads(module):
    text = (TERRAFORM_ROOT / "modules" / module / "main.tf").read_text()
    missing = [name for name in FUNCTION_ENVIRONMENT[module] if not re.search(rf"^\s*{name}\s*=", text, re.M)]
    assert missing == []


def app_metric_names() -> dict[str, str]:
    """`local.app_metric_names` of the observability module (read by cross-checks with the Rust code)."""
    doc = parse_dir(TERRAFORM_ROOT / "modules" / "observability")
    for block in doc.get("locals", []):
        if "app_metric_names" in block:
            return {k: scalar(v) for k, v in body_items(scalar(block["app_metric_names"])).items()}
    raise AssertionError("observability module defines no local.app_metric_names")


def test_app_metric_names_are_defined_once_and_match_the_contract():
    assert set(app_metric_names().values()) == APP_METRIC_NAMES
    observability = (TERRAFORM_ROOT / "modules" / "observability" / "main.tf").read_text()
    for metric in APP_METRIC_NAMES:
        assert observability.count(f'"{metric}"') == 1, f"{metric} is spelled out more than once"


def test_catalog_table_has_the_key_schema_the_dynamodb_adapter_uses():
    (_, table), = resources(parse_dir(TERRAFORM_ROOT / "modules" / "storage"), "aws_dynamodb_table")
    assert (scalar(table["hash_key"]), scalar(table["range_key"])) == ("pk", "sk")
    assert scalar(table["billing_mode"]) == "PAY_PER_REQUEST"
    indexes = {
        scalar(i["name"]): (scalar(i["hash_key"]), scalar(i["range_key"]), scalar(i["projection_type"]))
        for i in blocks(table, "global_secondary_index")
    }
    assert indexes == {f"gsi{n}": (f"gsi{n}pk", f"gsi{n}sk", "ALL") for n in (1, 2, 3, 4)}


# --- The checkers catch what they are meant to catch ------------------------------------


def test_variable_checker_catches_a_missing_description():
    doc = parse('variable "x" {\n  type = string\n}\n')
    assert variable_problems(doc, "snippet") == ["snippet: variable x has no description"]


def test_iam_checker_catches_wildcard_resources_and_actions():
    doc = parse(
        """
data "aws_iam_policy_document" "bad" {
  statement {
    sid       = "TooBroad"
    actions   = ["s3:GetObject"]
    resources = ["*"]
  }

  statement {
    sid       = "Everything"
    actions   = ["*"]
    resources = ["arn:aws:s3:::bucket/*"]
  }
}
"""
    )
    problems = iam_problems(doc, "snippet")
    assert len(problems) == 2
    assert "TooBroad" in problems[0] and "Everything" in problems[1]


def test_iam_checker_catches_wildcards_in_dynamic_statements_and_jsonencode():
    doc = parse(
        """
data "aws_iam_policy_document" "bad" {
  dynamic "statement" {
    for_each = [1]
    content {
      sid       = "Hidden"
      actions   = ["dynamodb:Query"]
      resources = ["*"]
    }
  }
}

resource "aws_iam_role_policy" "bad" {
  policy = jsonencode({
    Statement = [{ Effect = "Allow", Action = "s3:*", Resource = "*" }]
  })
}
"""
    )
    assert len(iam_problems(doc, "snippet")) == 2


def test_iam_checker_allows_the_listed_exceptions_only():
    doc = parse(
        """
resource "aws_kms_key" "k" {
  policy = data.aws_iam_policy_document.key.json
}

data "aws_iam_policy_document" "key" {
  statement {
    actions   = ["kms:*"]
    resources = ["*"]
  }
}

data "aws_iam_policy_document" "fn" {
  statement {
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }

  statement {
    actions   = ["xray:PutTraceSegments", "s3:ListBucket"]
    resources = ["*"]
  }
}
"""
    )
    problems = iam_problems(doc, "snippet")
    assert len(problems) == 1 and "s3:ListBucket" in problems[0]


def test_lambda_checker_catches_a_function_without_log_group_alias_or_tracing():
    doc = parse(
        """
locals {
  function_name = "f"
}

resource "aws_lambda_function" "f" {
  function_name = local.function_name
  publish       = true
}
"""
    )
    problems = lambda_problems(doc, "snippet")
    assert len(problems) == 3
    assert "no log group" in problems[0] and "no aws_lambda_alias" in problems[1] and "tracing" in problems[2]


def test_notification_checker_catches_an_unqualified_function_target():
    doc = parse(
        """
resource "aws_s3_bucket_notification" "n" {
  bucket = "b"

  lambda_function {
    lambda_function_arn = aws_lambda_function.ingest.arn
    events              = ["s3:ObjectCreated:*"]
  }
}

resource "aws_lambda_permission" "p" {
  function_name = aws_lambda_function.ingest.function_name
  principal     = "s3.amazonaws.com"
}
"""
    )
    problems = notification_problems(doc, "snippet")
    assert len(problems) == 2
    assert "not a function alias" in problems[0] and "no qualifier" in problems[1]


def test_output_checker_catches_a_name_without_resource_noun():
    doc = parse('output "name" {\n  description = "d"\n  value = 1\n}\n')
    assert output_problems(doc, "snippet") == ["snippet: output name does not start with a resource noun"]


def test_version_checker_catches_a_loose_terraform_pin_a_second_aws_major_and_an_unbounded_provider():
    doc = parse(
        """
terraform {
  required_version = "~> 1.5"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 4.0"
    }
    random = {
      source  = "hashicorp/random"
      version = "3.6.0"
    }
  }
}
"""
    )
    assert len(version_problems(doc, "snippet")) == 3


def test_nothing_uses_what_aws_provider_6_deprecates():
    deprecated = {
        "data.aws_region.current.name": "aws_region's name is deprecated in provider 6: use region",
    }
    found = [f"{rel(path)}: {reason}" for path in TF_FILES for text, reason in deprecated.items() if text in path.read_text()]
    assert found == []
