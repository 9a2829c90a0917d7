"""The workflow rules that actionlint, zizmor and yamllint do not check.

Each rule is a function from a parsed workflow (or its text) to a list of
problems, so the tests can run it on the real workflows and on a bad one.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterator

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
GITHUB_DIR = REPO_ROOT / ".github"
WORKFLOWS_DIR = GITHUB_DIR / "workflows"

AWS_CREDENTIALS_ACTION = "aws-actions/configure-aws-credentials"
PLAN_COMMENT_ACTION = "actions/github-script"
STATIC_KEY_INPUTS = ("aws-access-key-id", "aws-secret-access-key", "aws-session-token")
# Assembled so that this file does not itself hold the name it looks for.
SECRET_KEY_NAME = "AWS_SECRET_" + "ACCESS_KEY"
ALLOWED_TOP_LEVEL_PERMISSIONS = ({}, {"contents": "read"})
DEPLOY_COMMANDS = ("terraform apply", "aws deploy create-deployment", "canary-deploy.sh")

USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>\S+)(?P<rest>.*)$")
PINNED_REF = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
VERSION_COMMENT = re.compile(r"^\s+#\s*v\d+(\.\d+)*\b")


def workflow_files() -> list[Path]:
    return sorted([*WORKFLOWS_DIR.glob("*.yml"), *WORKFLOWS_DIR.glob("*.yaml")])


def load(text: str) -> dict[str, Any]:
    return yaml.safe_load(text)


def triggers(workflow: dict[str, Any]) -> Any:
    """The `on:` block; YAML 1.1 (PyYAML) reads the bare key `on` as True."""
    return workflow.get("on", workflow.get(True))


def jobs(workflow: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    yield from (workflow.get("jobs") or {}).items()


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return job.get("steps") or []


def uses_action(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in steps(job) if str(s.get("uses", "")).split("@")[0] == action]


def job_permissions(job: dict[str, Any]) -> dict[str, str]:
    permissions = job.get("permissions")
    if isinstance(permissions, dict):
        return permissions
    if permissions in ("write-all", "read-all"):
        return {"*": permissions.split("-")[0]}
    return {}


def unpinned_uses(text: str) -> list[str]:
    """Every `uses:` names a full commit SHA followed by a version comment."""
    problems = []
    for number, line in enumerate(text.splitlines(), start=1):
        match = USES_LINE.match(line)
        if not match:
            continue
        ref = match["ref"].strip("'\"")
        if ref.startswith("./"):
            continue
        if not PINNED_REF.match(ref):
            problems.append(f"line {number}: {ref} is not pinned to a 40-hex commit SHA")
        elif not VERSION_COMMENT.match(match["rest"]):
            problems.append(f"line {number}: {ref} has no version comment (# vX.Y.Z)")
    return problems


def static_aws_credentials(workflow: dict[str, Any]) -> list[str]:
    """AWS access comes from OIDC: configure-aws-credentials with role-to-assume, no keys."""
    problems = []
    for name, job in jobs(workflow):
        for step in uses_action(job, AWS_CREDENTIALS_ACTION):
            inputs = step.get("with") or {}
            if "role-to-assume" not in inputs:
                problems.append(f"{name}: configure-aws-credentials without role-to-assume")
            for key in STATIC_KEY_INPUTS:
                if key in inputs:
                    problems.append(f"{name}: configure-aws-credentials given {key}")
    return problems


def secret_key_mentions(files: dict[str, str]) -> list[str]:
    """No file under .github names the static secret key variable."""
    return [f"{path} mentions {SECRET_KEY_NAME}" for path, text in files.items() if SECRET_KEY_NAME in text]


def jobs_without_timeout(workflow: dict[str, Any]) -> list[str]:
    # A job that calls a reusable workflow cannot set a timeout; its jobs do.
    return [
        f"{name}: no timeout-minutes"
        for name, job in jobs(workflow)
        if "uses" not in job and "timeout-minutes" not in job
    ]


def loose_top_level_permissions(workflow: dict[str, Any]) -> list[str]:
    permissions = workflow.get("permissions", "missing")
    if permissions in ALLOWED_TOP_LEVEL_PERMISSIONS:
        return []
    return [f"top-level permissions are {permissions!r}, not {{}} or contents: read"]


def misplaced_id_token(workflow: dict[str, Any]) -> list[str]:
    """id-token: write exactly on the jobs that assume an AWS role."""
    problems = []
    top = workflow.get("permissions")
    if isinstance(top, dict) and top.get("id-token") == "write":
        problems.append("id-token: write granted to the whole workflow")
    for name, job in jobs(workflow):
        granted = job_permissions(job).get("id-token") == "write" or job_permissions(job).get("*") == "write"
        assumes_role = bool(uses_action(job, AWS_CREDENTIALS_ACTION))
        if granted and not assumes_role:
            problems.append(f"{name}: id-token: write without configure-aws-credentials")
        if assumes_role and not granted:
            problems.append(f"{name}: configure-aws-credentials without id-token: write")
    return problems


def misplaced_pull_request_write(workflow: dict[str, Any]) -> list[str]:
    """pull-requests: write only on a job that comments and holds no AWS role."""
    problems = []
    for name, job in jobs(workflow):
        permissions = job_permissions(job)
        if permissions.get("pull-requests") != "write" and permissions.get("*") != "write":
            continue
        if not uses_action(job, PLAN_COMMENT_ACTION):
            problems.append(f"{name}: pull-requests: write on a job that posts no comment")
        if uses_action(job, AWS_CREDENTIALS_ACTION):
            problems.append(f"{name}: pull-requests: write on a job that assumes an AWS role")
    if isinstance(workflow.get("permissions"), dict) and workflow["permissions"].get("pull-requests") == "write":
        problems.append("pull-requests: write granted to the whole workflow")
    return problems


def is_deploy_job(job: dict[str, Any]) -> bool:
    if "environment" in job:
        return True
    scripts = " ".join(str(s.get("run", "")) for s in steps(job))
    return any(command in scripts for command in DEPLOY_COMMANDS)


def environment_name(job: dict[str, Any]) -> str | None:
    environment = job.get("environment")
    if isinstance(environment, dict):
        return environment.get("name")
    return environment


def unserialised_deploys(workflow: dict[str, Any]) -> list[str]:
    """Deploy jobs queue in a per-environment group and never cancel a running deploy."""
    problems = []
    for name, job in jobs(workflow):
        if not is_deploy_job(job):
            continue
        concurrency = job.get("concurrency")
        if concurrency is None:
            problems.append(f"{name}: deploy job without a concurrency group")
            continue
        group = concurrency if isinstance(concurrency, str) else concurrency.get("group")
        if isinstance(concurrency, dict) and concurrency.get("cancel-in-progress") not in (None, False):
            problems.append(f"{name}: a newer run would cancel a deploy in progress")
        environment = environment_name(job)
        # Code (dev, prod) and Terraform (dev-infra, prod-infra) share one queue per environment.
        expected = f"deploy-{environment.removesuffix('-infra')}" if environment else None
        if expected and group != expected:
            problems.append(f"{name}: concurrency group {group!r} is not {expected}")
    return problems


RULES = (
    static_aws_credentials,
    jobs_without_timeout,
    loose_top_level_permissions,
    misplaced_id_token,
    misplaced_pull_request_write,
    unserialised_deploys,
)


def problems_in(text: str) -> list[str]:
    """Every rule above applied to one workflow's text."""
    workflow = load(text)
    found = unpinned_uses(text)
    for rule in RULES:
        found.extend(rule(workflow))
    return found
