"""IAM statements as the tests read them, from HCL policy documents or rendered JSON.

A `Statement` is the same shape whichever source it came from, so one checker
runs on `aws_iam_policy_document` data sources and on the rendered JSON
templates of the functions' policies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from test_terraform_conventions import TERRAFORM_ROOT, blocks, data_sources, flat, parse_dir, resources, scalar

# IAM calls that change what a role may do.
ROLE_PERMISSION_CHANGES = {
    "iam:CreateRole",
    "iam:PutRolePolicy",
    "iam:AttachRolePolicy",
    "iam:DetachRolePolicy",
    "iam:DeleteRolePolicy",
    "iam:PutRolePermissionsBoundary",
    "iam:UpdateAssumeRolePolicy",
}
# Of those, the ones IAM evaluates the iam:PermissionsBoundary condition key for.
BOUNDARY_CONDITIONED = ROLE_PERMISSION_CHANGES - {"iam:UpdateAssumeRolePolicy"}
# Calls no CI role may ever be allowed: they remove the boundary or rewrite a managed policy.
NEVER_ALLOWED = {
    "iam:*",
    "iam:DeleteRolePermissionsBoundary",
    "iam:CreatePolicyVersion",
    "iam:SetDefaultPolicyVersion",
    "iam:CreatePolicy",
}


@dataclass
class Statement:
    where: str
    sid: str
    effect: str
    actions: list[str]
    resources: list[str]
    conditions: dict[str, list[str]] = field(default_factory=dict)  # variable -> values

    def allows(self, action: str) -> bool:
        return self.effect == "Allow" and any(matches(pattern, action) for pattern in self.actions)

    def denies(self, action: str) -> bool:
        return self.effect == "Deny" and any(matches(pattern, action) for pattern in self.actions)

    def condition_on(self, key: str) -> list[str] | None:
        for variable, values in self.conditions.items():
            if variable.lower() == key.lower() or variable.lower().startswith(key.lower() + "/"):
                return values
        return None


def matches(pattern: str, action: str) -> bool:
    """IAM action glob: `iam:*`, `ec2:Create*`, or an exact (case-insensitive) name."""
    pattern, action = pattern.lower(), action.lower()
    if pattern == "*":
        return True
    if pattern.endswith("*"):
        return action.startswith(pattern[:-1])
    return pattern == action


def list_locals(doc: dict) -> dict[str, list[str]]:
    """The module's locals that are plain lists of strings, to expand `resources = local.x`."""
    found = {}
    for block in doc.get("locals", []):
        for name, value in block.items():
            items = flat(value)
            if isinstance(value, list) and items and all(isinstance(i, str) for i in items) and len(items) > 1:
                found[name] = [str(i) for i in items]
    return found


def hcl_statements(doc: dict, document: str | None = None, where: str = "") -> list[Statement]:
    """Statements of the aws_iam_policy_document data sources in a parsed directory."""
    lists = list_locals(doc)

    def expand(values: list[str]) -> list[str]:
        out = []
        for value in values:
            name = value[len("${local.") : -1] if value.startswith("${local.") and value.endswith("}") else None
            out.extend(lists.get(name, [value]) if name else [value])
        return out

    found = []
    for name, body in data_sources(doc, "aws_iam_policy_document"):
        if document is not None and name != document:
            continue
        for statement in blocks(body, "statement"):
            conditions = {}
            for condition in blocks(statement, "condition"):
                conditions[str(scalar(condition.get("variable")))] = [str(v) for v in flat(condition.get("values"))]
            found.append(
                Statement(
                    where=f"{where}{name}",
                    sid=str(scalar(statement.get("sid")) or "(no sid)"),
                    effect=str(scalar(statement.get("effect")) or "Allow"),
                    actions=expand([str(a) for a in flat(statement.get("actions"))]),
                    resources=expand([str(r) for r in flat(statement.get("resources"))]),
                    conditions=conditions,
                )
            )
    return found


def json_statements(policy: dict, where: str) -> list[Statement]:
    found = []
    for statement in policy["Statement"]:
        listify = lambda v: v if isinstance(v, list) else [v]  # noqa: E731
        conditions = {}
        for _test, pairs in (statement.get("Condition") or {}).items():
            for variable, values in pairs.items():
                conditions[variable] = [str(v) for v in listify(values)]
        found.append(
            Statement(
                where=where,
                sid=statement.get("Sid", "(no sid)"),
                effect=statement.get("Effect", "Allow"),
                actions=listify(statement.get("Action", [])),
                resources=listify(statement.get("Resource", [])),
                conditions=conditions,
            )
        )
    return found


def module_statements(module: str, document: str | None = None) -> list[Statement]:
    directory = module_dir(module)
    return hcl_statements(parse_dir(directory), document, where=f"{module}: ")


def module_dir(module: str) -> Path:
    return TERRAFORM_ROOT / module if module == "bootstrap" else TERRAFORM_ROOT / "modules" / module


def role_policy_documents(doc: dict) -> dict[str, str]:
    """aws_iam_role_policy name -> (role resource name, policy document name) for HCL-built policies."""
    import re

    found = {}
    for _, body in resources(doc, "aws_iam_role_policy"):
        role = re.search(r"aws_iam_role\.(\w+)", str(scalar(body.get("role"))))
        document = re.search(r"data\.aws_iam_policy_document\.(\w+)", str(scalar(body.get("policy"))))
        if role and document:
            found[document.group(1)] = role.group(1)
    return found
