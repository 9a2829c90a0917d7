"""The workflows keep the project's CI/CD standards (docs/ci-cd.md)."""

from __future__ import annotations

import pytest

import workflow_rules as rules

WORKFLOWS = {path.name: path.read_text() for path in rules.workflow_files()}
EXPECTED = {"ci.yml", "infra.yml", "release.yml", "scheduled.yml"}


def parsed(name: str) -> dict:
    return rules.load(WORKFLOWS[name])


def test_the_four_workflows_exist():
    assert EXPECTED <= set(WORKFLOWS)


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_every_action_is_pinned_to_a_commit_sha_with_its_version(name):
    assert rules.unpinned_uses(WORKFLOWS[name]) == []


def test_local_actions_and_composite_actions_are_pinned_too():
    for path in sorted(rules.GITHUB_DIR.glob("actions/**/action.y*ml")):
        assert rules.unpinned_uses(path.read_text()) == [], path


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_aws_access_is_oidc_only(name):
    assert rules.static_aws_credentials(parsed(name)) == []


def test_nothing_under_dot_github_names_the_static_secret_key():
    files = {
        str(path.relative_to(rules.REPO_ROOT)): path.read_text(errors="replace")
        for path in rules.GITHUB_DIR.rglob("*")
        if path.is_file()
    }
    assert files, "expected files under .github"
    assert rules.secret_key_mentions(files) == []


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_every_job_has_a_timeout(name):
    assert rules.jobs_without_timeout(parsed(name)) == []


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_top_level_permissions_are_restricted(name):
    assert rules.loose_top_level_permissions(parsed(name)) == []


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_id_token_write_only_where_a_role_is_assumed(name):
    assert rules.misplaced_id_token(parsed(name)) == []


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_pull_requests_write_only_on_the_plan_comment(name):
    assert rules.misplaced_pull_request_write(parsed(name)) == []


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_deploy_jobs_queue_per_environment(name):
    assert rules.unserialised_deploys(parsed(name)) == []


def test_ci_runs_on_every_push_and_pull_request_and_cancels_superseded_runs():
    ci = parsed("ci.yml")
    on = rules.triggers(ci)
    assert "push" in on and "pull_request" in on
    assert on["push"] is None and on["pull_request"] is None, "ci must not be filtered by branch or path"
    assert ci["concurrency"]["cancel-in-progress"] is True
    scripts = "\n".join(str(s.get("run", "")) for _, job in rules.jobs(ci) for s in rules.steps(job))
    for command in (
        "cargo fmt --all --check",
        "-D warnings",
        "./scripts/test",
        "cargo deny check",
        "--output-format zip --bin ludex-ingest-lambda",
        "--bin ludex-api-lambda",
    ):
        assert command in scripts, command
    assert "LUDEX_TEST_POSTGRES_URL" in ci["jobs"]["test"]["env"]
    assert "postgres" in ci["jobs"]["test"]["services"]


def test_infra_checks_every_stack_and_changes_nothing():
    infra = parsed("infra.yml")
    on = rules.triggers(infra)
    for event in ("pull_request", "push"):
        assert {"infra/**", ".github/workflows/**"} <= set(on[event]["paths"]), event
    assert on["push"]["branches"] == ["main"]
    jobs = infra["jobs"]
    assert set(jobs["validate"]["strategy"]["matrix"]["stack"]) == {
        "envs/dev",
        "envs/staging",
        "envs/prod",
        "bootstrap",
    }
    assert set(jobs) == {"lint", "validate", "plan"}
    assert not any(rules.environment_name(job) for job in jobs.values())


def test_each_aws_job_assumes_the_role_meant_for_it():
    def roles(workflow, job):
        return [s["with"]["role-to-assume"] for s in rules.uses_action(parsed(workflow)["jobs"][job], rules.AWS_CREDENTIALS_ACTION)]

    assert roles("infra.yml", "plan") == ["${{ vars[format('AWS_PLAN_ROLE_ARN_{0}', matrix.environment)] }}"]
    for env in ("dev", "staging", "prod"):
        assert roles("release.yml", f"plan-{env}") == [f"${{{{ vars.AWS_PLAN_ROLE_ARN_{env.upper()} }}}}"]
        assert roles("release.yml", f"deploy-{env}") == [
            "${{ vars.AWS_TERRAFORM_ROLE_ARN }}",
            "${{ vars.AWS_DEPLOY_ROLE_ARN }}",
        ]


def test_release_follows_a_green_ci_on_main():
    release = parsed("release.yml")
    on = rules.triggers(release)
    assert set(on) == {"workflow_run"}, "tags do not deploy: a tag names a commit main already delivered"
    assert on["workflow_run"]["workflows"] == ["ci"]
    assert on["workflow_run"]["types"] == ["completed"]
    assert on["workflow_run"]["branches"] == ["main"]
    condition = release["jobs"]["build"]["if"]
    assert "workflow_run.conclusion == 'success'" in condition
    assert "head_repository.full_name == github.repository" in condition
    assert release["jobs"]["plan-dev"]["needs"] == "build"
    assert release["jobs"]["deploy-dev"]["needs"] == ["build", "plan-dev"]


def test_release_wraps_the_cross_compiled_api_binary_without_emulation():
    build = parsed("release.yml")["jobs"]["build"]
    scripts = "\n".join(str(s.get("run", "")) for s in rules.steps(build))
    assert "--arm64 --bin ludex-api-lambda" in scripts
    assert "--build-context binary=target/lambda/ludex-api-lambda" in scripts
    assert not any("setup-qemu-action" in str(s.get("uses", "")) for s in rules.steps(build))
    # The named context must replace a stage the final image copies its bootstrap from.
    dockerfile = (rules.REPO_ROOT / "infra/docker/api.Dockerfile").read_text()
    assert "\nFROM scratch AS binary\n" in dockerfile
    final_stage = dockerfile.rsplit("\nFROM ", 1)[1]
    assert "COPY --from=binary" in final_stage and "/bootstrap" in final_stage


def test_release_promotes_dev_to_staging_to_prod_through_the_protected_environments():
    jobs = parsed("release.yml")["jobs"]
    for env in ("dev", "staging", "prod"):
        assert rules.environment_name(jobs[f"deploy-{env}"]) == env
    assert jobs["plan-staging"]["needs"] == "deploy-dev"
    assert jobs["plan-prod"]["needs"] == "deploy-staging"


def test_scheduled_checks_advisories_nightly():
    scheduled = parsed("scheduled.yml")
    assert rules.triggers(scheduled)["schedule"]
    scripts = [s.get("run", "") for _, job in rules.jobs(scheduled) for s in rules.steps(job)]
    assert "cargo deny check advisories" in scripts


BAD_WORKFLOW = f"""
name: bad
on: push
permissions: write-all
jobs:
  deploy:
    runs-on: ubuntu-24.04
    environment: prod
    permissions:
      id-token: write
      pull-requests: write
    steps:
      - uses: actions/checkout@v4
      - uses: actions/cache@0057852bfaa89a56745cba8c7296529d2fc39830
      - uses: aws-actions/configure-aws-credentials@ececac1a45f3b08a01d2dd070d28d111c5fe6722 # v4.1.0
        with:
          aws-access-key-id: ${{{{ secrets.KEY_ID }}}}
          aws-secret-access-key: ${{{{ secrets.{rules.SECRET_KEY_NAME} }}}}
      - run: terraform apply -auto-approve
  lint:
    runs-on: ubuntu-24.04
    timeout-minutes: 5
    permissions:
      id-token: write
    steps:
      - run: "true"
"""

GOOD_WORKFLOW = """
name: good
on: push
permissions: {}
jobs:
  deploy:
    runs-on: ubuntu-24.04
    timeout-minutes: 30
    environment: prod
    concurrency:
      group: deploy-prod
      cancel-in-progress: false
    permissions:
      id-token: write
    steps:
      - uses: ./.github/actions/local
      - uses: aws-actions/configure-aws-credentials@ececac1a45f3b08a01d2dd070d28d111c5fe6722 # v4.1.0
        with:
          role-to-assume: ${{ vars.AWS_DEPLOY_ROLE_ARN }}
      - run: terraform apply -auto-approve
"""


def test_the_rules_catch_a_workflow_that_breaks_each_of_them():
    workflow = rules.load(BAD_WORKFLOW)
    assert rules.unpinned_uses(BAD_WORKFLOW) == [
        "line 13: actions/checkout@v4 is not pinned to a 40-hex commit SHA",
        "line 14: actions/cache@0057852bfaa89a56745cba8c7296529d2fc39830 has no version comment (# vX.Y.Z)",
    ]
    assert rules.static_aws_credentials(workflow) == [
        "deploy: configure-aws-credentials without role-to-assume",
        "deploy: configure-aws-credentials given aws-access-key-id",
        "deploy: configure-aws-credentials given aws-secret-access-key",
    ]
    assert rules.secret_key_mentions({"bad.yml": BAD_WORKFLOW}) != []
    assert rules.jobs_without_timeout(workflow) == ["deploy: no timeout-minutes"]
    assert rules.loose_top_level_permissions(workflow) != []
    assert rules.misplaced_id_token(workflow) == ["lint: id-token: write without configure-aws-credentials"]
    assert rules.misplaced_pull_request_write(workflow) == [
        "deploy: pull-requests: write on a job that posts no comment",
        "deploy: pull-requests: write on a job that assumes an AWS role",
    ]
    assert rules.unserialised_deploys(workflow) == ["deploy: deploy job without a concurrency group"]


def test_the_rules_accept_a_workflow_that_keeps_them():
    assert rules.problems_in(GOOD_WORKFLOW) == []


def test_a_deploy_group_that_cancels_or_is_not_per_environment_is_caught():
    workflow = rules.load(
        GOOD_WORKFLOW.replace("group: deploy-prod", "group: release").replace(
            "cancel-in-progress: false", "cancel-in-progress: true"
        )
    )
    assert rules.unserialised_deploys(workflow) == [
        "deploy: a newer run would cancel a deploy in progress",
        "deploy: concurrency group 'release' is not deploy-prod",
    ]


def test_the_bare_on_key_is_read_despite_yaml_1_1():
    assert rules.triggers(rules.load("on: push\njobs: {}\n")) == "push"


def test_yaml_files_under_dot_github_parse():
    for path in sorted(rules.GITHUB_DIR.rglob("*.y*ml")):
        assert isinstance(rules.load(path.read_text()), dict), path
