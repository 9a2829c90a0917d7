"""Each environment's settings live in the repository, and every apply reads the same ones.

A root variable with a default is a setting that silently falls back to that
default whenever the caller (CI, or a laptop without the untracked tfvars
file) does not pass it. So the environments declare only inputs without a
default that the workflows always pass, plus the release-owned code inputs;
everything else is a literal in `envs/<env>/main.tf`, reviewed like code.
"""

from __future__ import annotations

import re

import pytest

from test_terraform_conventions import ENV_DIRS, REPO_ROOT, TERRAFORM_ROOT, flat, named_blocks, parse_dir, rel, scalar

ENVIRONMENTS = ("dev", "staging", "prod")
# Inputs owned by the release process (the code), not settings of the environment.
RELEASE_INPUTS = {"api_image_uri", "ingest_package_path"}
# Inputs every workflow passes (TF_VAR_*), with no default, so that a missing one fails the run.
PIPELINE_INPUTS = {"region", "github_repository"}
WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml"))


def env_variables(directory) -> dict[str, dict]:
    return dict(named_blocks(parse_dir(directory), "variable"))


def setting_problems(directory, label: str | None = None) -> list[str]:
    label = label or rel(directory)
    problems = []
    for name, body in env_variables(directory).items():
        if name in RELEASE_INPUTS:
            continue
        if name not in PIPELINE_INPUTS:
            problems.append(
                f"{label}: variable {name} is a setting; a run that does not pass it "
                f"silently resets it (put it in main.tf)"
            )
        elif "default" in body:
            problems.append(f"{label}: variable {name} has a default; a missing value must fail the run")
    return problems


def test_the_three_environments_exist():
    assert sorted(d.name for d in ENV_DIRS) == sorted(ENVIRONMENTS)


@pytest.mark.parametrize("directory", ENV_DIRS, ids=rel)
def test_no_per_environment_setting_is_left_to_an_untracked_file_or_a_default(directory):
    assert setting_problems(directory) == []


def test_the_workflows_pass_exactly_the_pipeline_inputs():
    passed = set()
    for path in WORKFLOWS:
        passed |= set(re.findall(r"\bTF_VAR_(\w+)\s*:", path.read_text()))
    assert passed == PIPELINE_INPUTS


def test_no_tfvars_file_is_ignored_or_asked_for():
    ignored = (TERRAFORM_ROOT / ".gitignore").read_text()
    assert not re.search(r"^\*\.tfvars\s*$", ignored, re.M), "settings must not go to an untracked tfvars file"
    for doc in ("docs/deploy.md", "docs/ci-cd.md"):
        assert "terraform.tfvars" not in (REPO_ROOT / doc).read_text(), doc


def test_the_state_location_is_derived_not_passed():
    for directory in ENV_DIRS:
        text = "".join(p.read_text() for p in directory.glob("*.tf"))
        assert 'data "aws_kms_alias" "state"' in text, rel(directory)
        assert "tfstate-${data.aws_caller_identity.current.account_id}" in text, rel(directory)


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_each_environment_names_itself_consistently(environment):
    directory = TERRAFORM_ROOT / "envs" / environment
    main = (directory / "main.tf").read_text()
    versions = (directory / "versions.tf").read_text()
    assert f'environment = "{environment}"' in re.sub(r"\s+", " ", main)
    assert f'key          = "{environment}/terraform.tfstate"' in versions
    assert f'"{environment}/terraform.tfstate"' in main
    (service,) = [body for name, body in named_blocks(parse_dir(directory), "module") if name == "service"]
    assert flat(service["github_deploy_environments"]) == ["${local.environment}"]
    assert scalar(service["environment"]) == "${local.environment}"


def test_the_checker_catches_a_setting_left_to_a_variable():
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "variables.tf").write_text(
            'variable "enable_rds" {\n  type = bool\n  default = false\n  description = "d"\n}\n'
            'variable "region" {\n  type = string\n  default = "eu-west-1"\n  description = "d"\n}\n'
        )
        problems = setting_problems(Path(tmp), label="snippet")
    assert problems == [
        "snippet: variable enable_rds is a setting; a run that does not pass it silently resets it (put it in main.tf)",
        "snippet: variable region has a default; a missing value must fail the run",
    ]
