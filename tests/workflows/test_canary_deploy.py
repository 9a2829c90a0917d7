"""The release deploy script, run against stand-in `aws`, `terraform`, `docker` and `curl`.

The stand-ins record every call and answer like the real tools would for one
environment, so the tests see which AWS calls a release makes, in what order,
and what happens when a canary or the smoke test fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import workflow_rules as rules

SCRIPT = rules.GITHUB_DIR / "scripts" / "canary-deploy.sh"
SHA = "0123456789abcdef0123456789abcdef01234567"
DIGEST = "sha256:" + "ab" * 32
OUTPUTS = {
    "api_function_name": "ludex-dev-api",
    "api_function_alias_name": "live",
    "ingest_function_name": "ludex-dev-ingest",
    "ingest_function_alias_name": "live",
    "ecr_repository_url": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/ludex-dev-api",
    "http_api_url": "https://abc123.execute-api.eu-west-1.amazonaws.com/",
    "codedeploy_app_name": "ludex-dev",
    "codedeploy_api_deployment_group_name": "ludex-dev-api",
    "codedeploy_ingest_deployment_group_name": "ludex-dev-ingest",
    "codedeploy_hook_function_name": "ludex-dev-release-hook",
}

STAND_IN = r'''
import json, os, sys

tool = os.path.basename(sys.argv[0])
args = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps([tool, *args]) + "\n")

def arg(name):
    return args[args.index(name) + 1]

if tool == "terraform":
    print(json.loads(os.environ["FAKE_OUTPUTS"])[args[-1]], end="")
elif tool == "curl":
    sys.exit(int(os.environ.get("FAKE_CURL_RC", "0")))
elif tool == "aws":
    service, command = args[0], args[1]
    if (service, command) == ("ecr", "describe-images"):
        if "--query" in args:
            print(os.environ["FAKE_DIGEST"])
        elif os.environ.get("FAKE_IMAGE_EXISTS") != "1":
            sys.exit(254)
    elif (service, command) == ("ecr", "get-login-password"):
        print("token")
    elif (service, command) == ("lambda", "get-alias"):
        print("3")
    elif (service, command) in (("lambda", "update-function-code"), ("lambda", "publish-version")):
        print(os.environ.get("FAKE_TARGET", "4"))
    elif (service, command) == ("deploy", "create-deployment"):
        print("d-" + arg("--deployment-group-name"))
    elif (service, command) == ("deploy", "wait"):
        if arg("--deployment-id") == os.environ.get("FAKE_FAILED_DEPLOYMENT"):
            sys.exit(255)
        sys.exit(int(os.environ.get("FAKE_DEPLOY_WAIT_RC", "0")))
    elif (service, command) == ("deploy", "get-deployment"):
        print("{}")
'''

pytestmark = pytest.mark.skipif(shutil.which("jq") is None, reason="the deploy script needs jq")


def deploy(tmp_path: Path, **scenario: str) -> tuple[subprocess.CompletedProcess, list[list[str]], Path]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("aws", "terraform", "docker", "curl"):
        stand_in = bin_dir / tool
        stand_in.write_text(f"#!{sys.executable}\n{STAND_IN}")
        stand_in.chmod(0o755)
    log = tmp_path / "calls.jsonl"
    log.touch()
    github_output = tmp_path / "github_output"
    env = {
        **{key: value for key, value in os.environ.items() if key != "DEPLOYMENT_CONFIG"},
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "FAKE_LOG": str(log),
        "FAKE_OUTPUTS": json.dumps(OUTPUTS),
        "FAKE_DIGEST": DIGEST,
        "LUDEX_ENV": "dev",
        "RELEASE_SHA": SHA,
        "API_IMAGE_ARCHIVE": str(tmp_path / "api-image.tar.gz"),
        "INGEST_ZIP": str(tmp_path / "bootstrap.zip"),
        "GITHUB_OUTPUT": str(github_output),
        **scenario,
    }
    result = subprocess.run(
        ["bash", str(SCRIPT)], cwd=rules.REPO_ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    return result, calls, github_output


def calls_to(calls: list[list[str]], *prefix: str) -> list[list[str]]:
    return [call for call in calls if call[: len(prefix)] == list(prefix)]


def value_after(call: list[str], flag: str) -> str:
    return call[call.index(flag) + 1]


def test_a_release_publishes_versions_and_hands_both_aliases_to_codedeploy_canaries(tmp_path):
    result, calls, github_output = deploy(tmp_path)
    assert result.returncode == 0, result.stderr

    pushes = calls_to(calls, "docker", "push")
    assert pushes == [["docker", "push", f"{OUTPUTS['ecr_repository_url']}:{SHA}"]]

    updates = calls_to(calls, "aws", "lambda", "update-function-code")
    assert [value_after(c, "--function-name") for c in updates] == ["ludex-dev-api", "ludex-dev-ingest"]
    assert all("--publish" in c for c in updates)
    assert value_after(updates[0], "--image-uri") == f"{OUTPUTS['ecr_repository_url']}@{DIGEST}"
    assert value_after(updates[1], "--zip-file") == f"fileb://{tmp_path / 'bootstrap.zip'}"

    deployments = calls_to(calls, "aws", "deploy", "create-deployment")
    assert [value_after(c, "--deployment-group-name") for c in deployments] == ["ludex-dev-api", "ludex-dev-ingest"]
    for call, function in zip(deployments, ("ludex-dev-api", "ludex-dev-ingest")):
        assert value_after(call, "--application-name") == "ludex-dev"
        assert "--deployment-config-name" not in call, "the deployment group's canary config applies"
        revision = json.loads(value_after(call, "--revision"))
        assert revision["revisionType"] == "AppSpecContent"
        appspec = yaml.safe_load(revision["appSpecContent"]["content"])
        assert appspec["Resources"] == [
            {
                function: {
                    "Type": "AWS::Lambda::Function",
                    "Properties": {
                        "Name": function,
                        "Alias": "live",
                        "CurrentVersion": "3",
                        "TargetVersion": "4",
                    },
                }
            }
        ]

    waits = calls_to(calls, "aws", "deploy", "wait", "deployment-successful")
    assert [value_after(c, "--deployment-id") for c in waits] == ["d-ludex-dev-api", "d-ludex-dev-ingest"]

    smoke = [c[-1] for c in calls_to(calls, "curl")]
    base = OUTPUTS["http_api_url"].rstrip("/")
    assert smoke == [f"{base}/healthz", f"{base}/games?limit=1"]
    assert calls.index(calls_to(calls, "curl")[0]) > calls.index(waits[-1]), "smoke test runs after the shift"
    assert github_output.read_text() == f"url={base}\n"


def test_a_deployment_config_given_explicitly_overrides_the_groups(tmp_path):
    result, calls, _ = deploy(tmp_path, DEPLOYMENT_CONFIG="CodeDeployDefault.LambdaCanary10Percent5Minutes")
    assert result.returncode == 0, result.stderr
    for call in calls_to(calls, "aws", "deploy", "create-deployment"):
        assert value_after(call, "--deployment-config-name") == "CodeDeployDefault.LambdaCanary10Percent5Minutes"


def test_an_image_already_in_ecr_is_reused_not_pushed_again(tmp_path):
    result, calls, _ = deploy(tmp_path, FAKE_IMAGE_EXISTS="1")
    assert result.returncode == 0, result.stderr
    assert calls_to(calls, "docker", "push") == []
    update = calls_to(calls, "aws", "lambda", "update-function-code")[0]
    assert value_after(update, "--image-uri") == f"{OUTPUTS['ecr_repository_url']}@{DIGEST}"


def test_a_failed_canary_fails_the_job_and_skips_the_smoke_test(tmp_path):
    result, calls, _ = deploy(tmp_path, FAKE_DEPLOY_WAIT_RC="255")
    assert result.returncode == 1
    assert calls_to(calls, "aws", "deploy", "get-deployment"), "the failure is reported"
    assert calls_to(calls, "curl") == []
    assert "rolling back every function of this release" in result.stderr


def test_every_deployment_smoke_tests_the_new_version_before_any_traffic_shifts(tmp_path):
    result, calls, _ = deploy(tmp_path)
    assert result.returncode == 0, result.stderr
    for call in calls_to(calls, "aws", "deploy", "create-deployment"):
        content = json.loads(value_after(call, "--revision"))["appSpecContent"]["content"]
        assert json.loads(content)["Hooks"] == [{"BeforeAllowTraffic": OUTPUTS["codedeploy_hook_function_name"]}]


def test_a_failed_canary_of_one_function_rolls_the_other_function_back_too(tmp_path):
    result, calls, _ = deploy(tmp_path, FAKE_FAILED_DEPLOYMENT="d-ludex-dev-ingest")
    assert result.returncode == 1
    stops = [value_after(c, "--deployment-id") for c in calls_to(calls, "aws", "deploy", "stop-deployment")]
    assert "d-ludex-dev-api" in stops
    rollbacks = calls_to(calls, "aws", "lambda", "update-alias")
    assert [(value_after(c, "--function-name"), value_after(c, "--function-version")) for c in rollbacks] == [
        ("ludex-dev-api", "3"),
        ("ludex-dev-ingest", "3"),
    ]
    assert calls_to(calls, "curl") == []


def test_a_failed_smoke_test_points_both_aliases_back_and_fails_the_job(tmp_path):
    result, calls, _ = deploy(tmp_path, FAKE_CURL_RC="22")
    assert result.returncode == 1
    rollbacks = calls_to(calls, "aws", "lambda", "update-alias")
    assert [(value_after(c, "--function-name"), value_after(c, "--name"), value_after(c, "--function-version"))
            for c in rollbacks] == [("ludex-dev-api", "live", "3"), ("ludex-dev-ingest", "live", "3")]


def test_unchanged_code_starts_no_deployment_but_is_still_smoke_tested(tmp_path):
    result, calls, _ = deploy(tmp_path, FAKE_TARGET="3")
    assert result.returncode == 0, result.stderr
    assert calls_to(calls, "aws", "deploy", "create-deployment") == []
    assert len(calls_to(calls, "curl")) == 2
