"""The roles GitHub Actions assumes: what they may do, read as an AWS engineer would.

Checkov sees each statement alone; these tests check what the statements add
up to: a CI role cannot raise its own permissions, every role it creates
carries the permissions boundary, one environment's roles cannot touch
another's resources, and a plan can make the read calls the provider makes.
"""

from __future__ import annotations

import re

import pytest

from iam_statements import (
    BOUNDARY_CONDITIONED,
    NEVER_ALLOWED,
    ROLE_PERMISSION_CHANGES,
    Statement,
    hcl_statements,
    module_dir,
    module_statements,
    role_policy_documents,
)
from test_terraform_conventions import (
    CONFIG_DIRS,
    STAR_RESOURCE_ACTIONS,
    TERRAFORM_ROOT,
    MODULE_DIRS,
    flat,
    named_blocks,
    parse_dir,
    rel,
    resources,
    scalar,
)

# Read calls the AWS provider makes with Resource "*" while it plans this
# configuration; a role that plans or applies must be allowed them.
PROVIDER_UNSCOPED_READS = {
    "ssm:DescribeParameters": "aws_ssm_parameter reads the parameter's metadata",
    "ec2:DescribeAvailabilityZones": "data.aws_availability_zones (network module)",
    "kms:ListAliases": "data.aws_kms_alias (state key lookup)",
    "logs:DescribeLogGroups": "aws_cloudwatch_log_group reads",
    "iam:ListOpenIDConnectProviders": "data.aws_iam_openid_connect_provider looks the provider up by URL",
}


def ci_role_documents() -> list[tuple[str, str, str]]:
    """(module, policy document, role) for every role policy of the CI roles module."""
    doc = parse_dir(module_dir("ci_roles"))
    return [("ci_roles", document, role) for document, role in role_policy_documents(doc).items()]


def apply_role_statements() -> list[Statement]:
    return module_statements("ci_roles", "terraform")


def boundary_problems(statements: list[Statement], own_role: str, boundary: str) -> list[str]:
    """A role's statements must not let it raise its own or another role's permissions beyond the boundary."""
    problems = []
    deny = [s for s in statements if s.effect == "Deny"]
    for statement in statements:
        label = f"{statement.where} statement {statement.sid}"
        if statement.effect == "Allow":
            never = sorted(a for a in NEVER_ALLOWED if a in statement.actions or (a != "iam:*" and statement.allows(a)))
            if never:
                problems.append(f"{label} allows {', '.join(never)}")
        for action in sorted(BOUNDARY_CONDITIONED):
            if statement.allows(action) and statement.condition_on("iam:PermissionsBoundary") is None:
                problems.append(f"{label} allows {action} without an iam:PermissionsBoundary condition")
        if statement.allows("iam:AttachRolePolicy") and statement.condition_on("iam:PolicyARN") is None:
            problems.append(f"{label} allows iam:AttachRolePolicy without an iam:PolicyARN condition")
    changes = [s for s in statements if any(s.allows(a) for a in ROLE_PERMISSION_CHANGES)]
    if changes:
        for target, what in ((own_role, "its own role"), (boundary, "the boundary policy")):
            if not any(any(target in r for r in s.resources) and s.denies("iam:PutRolePolicy") for s in deny):
                problems.append(f"{statements[0].where}: no Deny statement keeps it from changing {what} ({target})")
    return problems


# --- Finding 2: no escalation ----------------------------------------------------------


def test_no_ci_role_can_change_its_own_permissions_or_attach_policies_without_the_boundary():
    problems = []
    for module, document, role in ci_role_documents():
        statements = module_statements(module, document)
        problems += boundary_problems(statements, f"aws_iam_role.{role}", "aws_iam_policy.boundary")
    assert problems == []
    assert ci_role_documents(), "the CI roles module has no role policies"


@pytest.mark.parametrize("directory", CONFIG_DIRS, ids=rel)
def test_no_statement_anywhere_grants_iam_role_changes_without_the_boundary(directory):
    problems = []
    doc = parse_dir(directory)
    for statement in hcl_statements(doc, where=f"{rel(directory)}: "):
        for action in sorted(BOUNDARY_CONDITIONED):
            if statement.allows(action) and statement.condition_on("iam:PermissionsBoundary") is None:
                problems.append(f"{statement.where} {statement.sid} allows {action} without the boundary condition")
    assert problems == []


@pytest.mark.parametrize(
    "directory",
    [d for d in MODULE_DIRS if d.name not in ("ci_roles", "bootstrap")],
    ids=rel,
)
def test_every_role_an_environment_creates_carries_the_permissions_boundary(directory):
    missing = [
        name
        for name, body in resources(parse_dir(directory), "aws_iam_role")
        if scalar(body.get("permissions_boundary")) in (None, "")
    ]
    assert missing == [], "the apply role may only create roles under the boundary"


def test_the_boundary_grants_no_iam_and_no_organizations_access():
    statements = module_statements("ci_roles", "boundary")
    assert statements, "no boundary policy document"
    granted = [a for s in statements if s.effect == "Allow" for a in s.actions]
    assert [a for a in granted if a.split(":")[0] in ("iam", "organizations", "account", "sts") or a == "*"] == []


def test_the_checker_catches_an_apply_role_that_can_attach_anything_to_itself():
    statement = Statement(
        where="snippet",
        sid="ManagePrefixedRoles",
        effect="Allow",
        actions=["iam:PutRolePolicy", "iam:AttachRolePolicy", "iam:UpdateAssumeRolePolicy"],
        resources=["arn:aws:iam::1:role/ludex-dev-*"],
    )
    problems = boundary_problems([statement], "aws_iam_role.terraform", "aws_iam_policy.boundary")
    assert "snippet statement ManagePrefixedRoles allows iam:PutRolePolicy without an iam:PermissionsBoundary condition" in problems
    assert "snippet statement ManagePrefixedRoles allows iam:AttachRolePolicy without an iam:PolicyARN condition" in problems
    assert any("its own role" in p for p in problems)


# --- Finding 3: the plan's unscoped reads --------------------------------------------------


@pytest.mark.parametrize("action", sorted(PROVIDER_UNSCOPED_READS))
def test_the_apply_role_may_make_the_unscoped_reads_a_plan_makes(action):
    granted = [s for s in apply_role_statements() if s.allows(action) and "*" in s.resources]
    assert granted, f"{action} needs Resource '*' ({PROVIDER_UNSCOPED_READS[action]})"
    assert action in STAR_RESOURCE_ACTIONS


# --- Finding 10: one environment's role stays in its environment ---------------------------

# Resource ARN parts that name this environment.
ENVIRONMENT_SCOPED = re.compile(r"\$\{(local\.prefix|var\.environment)\}|\$\{var\.state_")
READ_ONLY = re.compile(r"^[a-z0-9-]+:(Get|List|Describe)")
TAG_CONDITIONS = ("aws:ResourceTag/", "aws:RequestTag/", "aws:CalledVia", "ec2:CreateAction")


def environment_scope_problems(statements: list[Statement]) -> list[str]:
    problems = []
    for statement in statements:
        if statement.effect != "Allow" or all(READ_ONLY.match(a) for a in statement.actions):
            continue
        if any(statement.condition_on(key.rstrip("/")) is not None for key in TAG_CONDITIONS):
            continue
        for resource in statement.resources:
            if resource == "*":
                unscoped = [a for a in statement.actions if a not in STAR_RESOURCE_ACTIONS]
                if unscoped:
                    problems.append(f"{statement.where} {statement.sid}: {unscoped} on '*'")
            elif not ENVIRONMENT_SCOPED.search(resource) and "iam::aws:policy" not in resource:
                problems.append(f"{statement.where} {statement.sid}: {resource} is not scoped to the environment")
    return problems


def test_the_apply_role_scopes_every_grant_to_its_environment_by_name_or_tag():
    assert environment_scope_problems(apply_role_statements()) == []


def test_the_scope_checker_catches_ec2_on_the_whole_region_and_every_rds_secret():
    statements = [
        Statement("snippet", "ManageNetwork", "Allow", ["ec2:*"], ["arn:aws:ec2:${local.arn_tail}:*"]),
        Statement("snippet", "Secrets", "Allow", ["secretsmanager:*"], ["arn:aws:secretsmanager:${local.arn_tail}:secret:rds!*"]),
    ]
    assert len(environment_scope_problems(statements)) == 2


# --- Finding 4: one GitHub OIDC provider per account ----------------------------------------


def test_the_github_oidc_provider_is_created_once_in_bootstrap_and_looked_up_elsewhere():
    creators = [
        rel(directory)
        for directory in CONFIG_DIRS
        if resources(parse_dir(directory), "aws_iam_openid_connect_provider")
    ]
    assert creators == ["infra/terraform/bootstrap"]
    lookups = named_blocks(parse_dir(TERRAFORM_ROOT / "modules" / "github_oidc"), "data", "aws_iam_openid_connect_provider")
    assert list(lookups), "the environments look the provider up"


# --- Finding 6: a read-only plan role --------------------------------------------------------


def test_every_environment_has_a_read_only_plan_role_trusted_for_pull_requests_and_main():
    doc = parse_dir(module_dir("ci_roles"))
    roles = {name for name, _ in resources(doc, "aws_iam_role")}
    assert {"plan", "terraform"} <= roles
    trust = {s.sid: s for s in module_statements("ci_roles", "plan_trust")}
    subjects = [v for s in trust.values() for variable, values in s.conditions.items() if variable.endswith(":sub") for v in values]
    subjects = [v.replace("${var.release_branch}", "main") for v in subjects]
    assert any(v.endswith(":pull_request") for v in subjects), subjects
    assert any(v.endswith(":ref:refs/heads/main") for v in subjects), subjects
    attachments = [str(scalar(b.get("policy_arn"))) for _, b in resources(doc, "aws_iam_role_policy_attachment")]
    assert any(a.endswith(":iam::aws:policy/ReadOnlyAccess") for a in attachments)
    plan = module_statements("ci_roles", "plan")
    writes = [a for s in plan if s.effect == "Allow" for a in s.actions if not re.match(r"^[a-z0-9]+:(Get|List|Describe|Decrypt)", a)]
    assert writes == [], "the plan role only reads"
    denied = {a for s in plan if s.effect == "Deny" for a in s.actions}
    assert {"s3:GetObject", "dynamodb:Scan", "secretsmanager:GetSecretValue"} <= denied, "no data reads"


def test_bootstrap_creates_the_ci_roles_for_dev_staging_and_prod():
    doc = parse_dir(TERRAFORM_ROOT / "bootstrap")
    environments = [v for block in doc.get("locals", []) for v in flat(block.get("environments"))]
    assert environments == ["dev", "staging", "prod"]
    (ci_roles,) = [body for name, body in named_blocks(doc, "module") if name == "ci_roles"]
    assert "local.environments" in str(scalar(ci_roles.get("for_each")))
