"""Every inline checkov skip states a reason, and the reason is true.

A skip silences a scanner for good, so its reason is read as a claim about
the code. The claims that can be checked are: that something is recorded by
CloudTrail (then a trail must exist), and that a policy's grants are scoped to
its environment (then the scope checker must agree) or grant no `iam:*`.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from iam_statements import hcl_statements
from test_ci_roles import environment_scope_problems
from test_terraform_conventions import CONFIG_DIRS, TERRAFORM_ROOT, TF_FILES, parse_dir, rel, resources

SKIP = re.compile(r"#\s*checkov:skip=(?P<check>[\w]+)(?::(?P<reason>.*))?$")
BLOCK = re.compile(r'^(resource|data)\s+"(\w+)"\s+"(\w+)"\s*\{')
CLOUDTRAIL_CLAIM = re.compile(r"(audited|logged|recorded)\s+(through|by|in)\s+CloudTrail", re.I)
SCOPE_CLAIM = re.compile(r"scoped to (the|this|its) environment", re.I)


def skips() -> list[tuple[Path, str, str, str, str, str]]:
    """(file, block kind, block type, block name, check, reason) for every inline skip."""
    found = []
    for path in TF_FILES:
        block = ("", "", "")
        for line in path.read_text().splitlines():
            opening = BLOCK.match(line)
            if opening:
                block = opening.groups()
            match = SKIP.search(line.strip())
            if match:
                found.append((path, *block, match["check"], (match["reason"] or "").strip()))
    return found


def trails() -> list[dict]:
    return [body for directory in CONFIG_DIRS for _, body in resources(parse_dir(directory), "aws_cloudtrail")]


def claim_problems(entries) -> list[str]:
    problems = []
    for path, kind, block_type, name, check, reason in entries:
        label = f"{rel(path) if path.is_absolute() else path}: {block_type}.{name} {check}"
        if len(reason) < 20:
            problems.append(f"{label}: no reason")
        if CLOUDTRAIL_CLAIM.search(reason) and not trails():
            problems.append(f"{label}: claims CloudTrail records it, but no aws_cloudtrail exists")
        if kind == "data" and block_type == "aws_iam_policy_document":
            statements = hcl_statements(parse_dir(path.parent), name, where=f"{path.parent.name}: ")
            if SCOPE_CLAIM.search(reason) and environment_scope_problems(statements):
                problems.append(f"{label}: claims the grants are scoped to the environment; they are not")
            if re.search(r"\bno iam:\*", reason, re.I) and any("iam:*" in s.actions for s in statements if s.effect == "Allow"):
                problems.append(f"{label}: claims no iam:* grant; there is one")
    return problems


def test_every_skip_states_a_reason_that_is_true():
    assert skips(), "expected some inline skips"
    assert claim_problems(skips()) == []


def test_the_claim_checker_catches_a_cloudtrail_that_does_not_exist(monkeypatch):
    import test_scanner_skips as module

    monkeypatch.setattr(module, "trails", lambda: [])
    entry = (Path("bootstrap/main.tf"), "resource", "aws_s3_bucket", "state", "CKV_AWS_18",
             "Access to state is audited through CloudTrail; no second log bucket.")
    assert claim_problems([entry]) == [
        "bootstrap/main.tf: aws_s3_bucket.state CKV_AWS_18: claims CloudTrail records it, but no aws_cloudtrail exists"
    ]
