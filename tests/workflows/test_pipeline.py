"""The delivery pipeline as a whole: workflows read together with the Terraform of the roles.

The linters check each workflow alone. These tests check what only the pair
shows: that each job that assumes a role presents an OIDC subject the role
trusts, that every apply runs a reviewed plan, that releases go dev → staging
→ prod, and that no deploy can be cancelled or dropped by another workflow.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

import workflow_rules as rules

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "infra"))
from test_terraform_conventions import TERRAFORM_ROOT, flat, named_blocks, parse_dir, scalar  # noqa: E402
from iam_statements import module_statements  # noqa: E402

ENVIRONMENTS = ("dev", "staging", "prod")
WORKFLOWS = {path.name: rules.load(path.read_text()) for path in rules.workflow_files()}
TEXTS = {path.name: path.read_text() for path in rules.workflow_files()}
ROLE_KINDS = {
    "AWS_DEPLOY_ROLE_ARN": "deploy",
    "AWS_TERRAFORM_ROLE_ARN": "terraform",
    "AWS_PLAN_ROLE_ARN": "plan",
}


# --- Reading the workflows ----------------------------------------------------------------


def run_text(job: dict) -> str:
    return "\n".join(str(s.get("run", "")) for s in rules.steps(job))


def run_and_script_text(job: dict) -> str:
    """The job's commands, with the repository scripts they call inlined."""
    text = run_text(job)
    for script in set(re.findall(r"\.github/scripts/[\w.-]+\.sh", text)):
        text += "\n" + (rules.REPO_ROOT / script).read_text()
    return text


def job_environments(job: dict) -> list[str]:
    """The Terraform environments a job works on: its GitHub environment, LUDEX_ENV, or its matrix."""
    name = rules.environment_name(job)
    if name:
        return [name]
    env = (job.get("env") or {}).get("LUDEX_ENV")
    if env and "${{" not in str(env):
        return [env]
    matrix = ((job.get("strategy") or {}).get("matrix") or {}).get("environment")
    return list(matrix or [])


def job_events(workflow: dict, job: dict) -> set[str]:
    on = rules.triggers(workflow)
    events = {on} if isinstance(on, str) else set(on or {})
    condition = str(job.get("if", ""))
    named = set(re.findall(r"github\.event_name\s*==\s*'(\w+)'", condition))
    return events & named if named else events


def presented_subjects(workflow: dict, job: dict) -> set[str]:
    """OIDC subjects (without the repo: prefix) a job's token can carry."""
    environment = rules.environment_name(job)
    if environment:
        return {f"environment:{environment}"}
    subjects = set()
    for event in job_events(workflow, job):
        if event == "pull_request":
            subjects.add("pull_request")
        elif event in ("push", "workflow_run", "workflow_dispatch", "schedule"):
            subjects.add("ref:refs/heads/main")
    return subjects


def role_kinds(job: dict) -> list[str]:
    kinds = []
    for step in rules.uses_action(job, rules.AWS_CREDENTIALS_ACTION):
        role = str((step.get("with") or {}).get("role-to-assume", ""))
        kinds += [kind for variable, kind in ROLE_KINDS.items() if variable in role]
    return kinds


def needs(job: dict) -> list[str]:
    value = job.get("needs") or []
    return [value] if isinstance(value, str) else list(value)


def ancestors(jobs: dict, name: str) -> set[str]:
    found, stack = set(), list(needs(jobs[name]))
    while stack:
        parent = stack.pop()
        if parent not in found:
            found.add(parent)
            stack.extend(needs(jobs[parent]))
    return found


# --- Reading the roles' trust from Terraform ------------------------------------------------


def service_argument(environment: str, argument: str):
    (service,) = [b for n, b in named_blocks(parse_dir(TERRAFORM_ROOT / "envs" / environment), "module") if n == "service"]
    if argument in service:
        return [str(v).replace("${local.environment}", environment) for v in flat(service[argument])]
    variables = dict(named_blocks(parse_dir(TERRAFORM_ROOT / "modules" / "service"), "variable"))
    return [str(v) for v in flat(variables[argument].get("default"))]


def bootstrap_environments() -> list[str]:
    doc = parse_dir(TERRAFORM_ROOT / "bootstrap")
    return [str(v) for block in doc.get("locals", []) for v in flat(block.get("environments"))]


def trusted_subjects(kind: str, environment: str) -> set[str]:
    if kind == "deploy":
        return {f"environment:{e}" for e in service_argument(environment, "github_deploy_environments")} | {
            f"ref:refs/heads/{b}" for b in service_argument(environment, "github_deploy_branches")
        }
    if environment not in bootstrap_environments():
        return set()
    subjects = set()
    for statement in module_statements("ci_roles", f"{kind}_trust"):
        for value in [v for variable, values in statement.conditions.items() if variable.endswith(":sub") for v in values]:
            value = value.replace("${var.environment}", environment).replace("${var.release_branch}", "main")
            subjects.add(value.split(":", 2)[2] if value.startswith("repo:") else value)
    return subjects


def trust_problems() -> list[str]:
    problems = []
    for workflow_name, workflow in WORKFLOWS.items():
        for job_name, job in rules.jobs(workflow):
            for kind in role_kinds(job):
                for environment in job_environments(job) or ["(none)"]:
                    terraform_environment = environment.removesuffix("-infra")
                    trusted = trusted_subjects(kind, terraform_environment) if environment != "(none)" else set()
                    for subject in sorted(presented_subjects(workflow, job) - trusted):
                        problems.append(
                            f"{workflow_name} {job_name} presents repo:OWNER/REPO:{subject}; the "
                            f"{terraform_environment} {kind} role trusts {sorted(trusted)}"
                        )
    return problems


# --- Finding 1: every assumed role trusts the job --------------------------------------------


def test_every_job_that_assumes_a_role_presents_a_subject_that_role_trusts():
    assert trust_problems() == []


def test_every_role_assuming_job_is_accounted_for():
    assumed = [(w, n) for w, wf in WORKFLOWS.items() for n, job in rules.jobs(wf) if role_kinds(job)]
    assert assumed, "no job assumes a role"
    for workflow_name, job_name in assumed:
        job = WORKFLOWS[workflow_name]["jobs"][job_name]
        assert job_environments(job), f"{workflow_name} {job_name}: cannot tell which environment's role it assumes"


# --- Finding 6: reviewed plans ----------------------------------------------------------------


def test_pull_requests_get_a_read_only_plan_of_every_environment_in_the_job_summary():
    plans = [
        (name, job)
        for name, job in rules.jobs(WORKFLOWS["infra.yml"])
        if "plan" in role_kinds(job) and job_events(WORKFLOWS["infra.yml"], job) == {"pull_request"}
    ]
    assert plans, "infra.yml has no pull-request plan job with the plan role"
    for name, job in plans:
        assert sorted(job_environments(job)) == sorted(ENVIRONMENTS), name
        text = run_and_script_text(job)
        assert re.search(r"terraform\b.*\bplan\b", text) and "GITHUB_STEP_SUMMARY" in text, name
        assert "AWS_PLAN_ROLE_ARN != ''" not in str(job.get("if", "")), f"{name} is skipped without a plan role"


def test_every_apply_runs_the_saved_plan_of_the_same_run():
    for workflow_name, workflow in WORKFLOWS.items():
        assert "-auto-approve" not in TEXTS[workflow_name], workflow_name
        jobs = dict(rules.jobs(workflow))
        for name, job in jobs.items():
            applies = re.findall(r"terraform\b[^\n]*\bapply\b[^\n]*", run_text(job))
            for command in applies:
                assert re.search(r"\S+\.tfplan\b", command), f"{workflow_name} {name}: {command} applies no saved plan"
                downloads = [
                    str((s.get("with") or {}).get("name", ""))
                    for s in rules.uses_action(job, "actions/download-artifact")
                ]
                uploaded = {
                    str((s.get("with") or {}).get("name", ""))
                    for parent in ancestors(jobs, name)
                    for s in rules.uses_action(jobs[parent], "actions/upload-artifact")
                }
                assert any(d in uploaded for d in downloads), f"{workflow_name} {name}: the plan is not from this run"


def test_prod_changes_wait_for_the_protected_environment():
    for workflow_name, workflow in WORKFLOWS.items():
        for name, job in rules.jobs(workflow):
            text = run_text(job)
            if ("terraform" in text and " apply" in text) or "canary-deploy.sh" in text:
                if "prod" in job_environments(job):
                    assert rules.environment_name(job) == "prod", f"{workflow_name} {name}"


# --- Finding 7: staging between dev and prod ----------------------------------------------------


def delivery_jobs() -> dict[str, str]:
    """environment -> the release.yml job that changes it."""
    jobs = dict(rules.jobs(WORKFLOWS["release.yml"]))
    return {
        rules.environment_name(job): name
        for name, job in jobs.items()
        if "canary-deploy.sh" in run_text(job) and rules.environment_name(job)
    }


def test_releases_are_promoted_dev_then_staging_then_prod():
    delivery = delivery_jobs()
    assert sorted(delivery) == sorted(ENVIRONMENTS)
    jobs = dict(rules.jobs(WORKFLOWS["release.yml"]))
    assert delivery["dev"] in ancestors(jobs, delivery["staging"])
    assert delivery["staging"] in ancestors(jobs, delivery["prod"])


def test_every_stack_is_validated():
    matrix = WORKFLOWS["infra.yml"]["jobs"]["validate"]["strategy"]["matrix"]["stack"]
    assert set(matrix) == {"envs/dev", "envs/staging", "envs/prod", "bootstrap"}


# --- Finding 9: nothing cancels or drops a deploy -------------------------------------------------


def concurrency_groups(workflow: dict) -> set[str]:
    groups = set()
    for holder in [workflow, *[job for _, job in rules.jobs(workflow)]]:
        concurrency = holder.get("concurrency")
        if concurrency is not None:
            groups.add(concurrency if isinstance(concurrency, str) else str(concurrency.get("group")))
    return groups


def shared_group_problems(workflows: dict[str, dict]) -> list[str]:
    problems = []
    names = sorted(workflows)
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            for group in sorted(concurrency_groups(workflows[first]) & concurrency_groups(workflows[second])):
                problems.append(f"{first} and {second} share concurrency group {group}: one can drop the other's pending deploy")
    return problems


def test_no_two_workflows_share_a_concurrency_group():
    assert shared_group_problems(WORKFLOWS) == []


def test_only_the_release_workflow_changes_an_environment():
    for workflow_name, workflow in WORKFLOWS.items():
        if workflow_name == "release.yml":
            continue
        for name, job in rules.jobs(workflow):
            text = run_text(job)
            assert not re.search(r"terraform\b[^\n]*\bapply\b", text), f"{workflow_name} {name} applies"
            assert "canary-deploy.sh" not in text, f"{workflow_name} {name} deploys"


def test_a_commits_infrastructure_applies_before_its_code_deploys():
    jobs = dict(rules.jobs(WORKFLOWS["release.yml"]))
    for environment, name in delivery_jobs().items():
        text = run_text(jobs[name])
        assert re.search(r"terraform\b[^\n]*\bapply\b", text), f"{name} applies no infrastructure"
        apply_at = re.search(r"terraform\b[^\n]*\bapply\b", text).start()
        assert apply_at < text.index("canary-deploy.sh"), f"{name} deploys code before it applies"
        assert jobs[name]["concurrency"]["cancel-in-progress"] is False


def test_the_shared_group_checker_catches_the_old_layout():
    infra = {"jobs": {"apply-dev": {"concurrency": {"group": "deploy-dev"}}}}
    release = {"jobs": {"deploy-dev": {"concurrency": {"group": "deploy-dev"}}}}
    assert shared_group_problems({"infra.yml": infra, "release.yml": release}) == [
        "infra.yml and release.yml share concurrency group deploy-dev: one can drop the other's pending deploy"
    ]
