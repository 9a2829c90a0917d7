"""The alarms CodeDeploy watches judge the new version alone, as rates, with a minimum sample.

During a canary the new version gets a tenth of little traffic: an alarm on
all versions together (the `FunctionName` dimension alone) or on absolute
counts never fires for it. So every alarm a deployment group watches is
scoped to the executed version (or, for throttles, the alias), the error
alarms are metric-math rates that stay quiet below a minimum number of
invocations, and the API's alarms include the 5xx answers the application
returns itself, which Lambda does not count as errors.
"""

from __future__ import annotations

import re

import pytest

from test_terraform_conventions import TERRAFORM_ROOT, blocks, named_blocks, parse_dir, resources, scalar

OBSERVABILITY = TERRAFORM_ROOT / "modules" / "observability"
VERSION_DIMENSIONS = {"ExecutedVersion", "FunctionVersion"}
ALIAS_DIMENSION = "Resource"


def release_alarm_resources(output: str) -> list[str]:
    """Names of the alarm resources an observability output hands to CodeDeploy."""
    outputs = dict(named_blocks(parse_dir(OBSERVABILITY), "output"))
    return sorted(set(re.findall(r"aws_cloudwatch_metric_alarm\.(\w+)", str(scalar(outputs[output]["value"])))))


def alarm(name: str) -> dict:
    (body,) = [b for n, b in resources(parse_dir(OBSERVABILITY), "aws_cloudwatch_metric_alarm") if n == name]
    return body


def metric_dimensions(body: dict) -> list[set[str]]:
    """The dimension names of every metric an alarm reads (plain or in metric queries)."""
    found = []
    if body.get("dimensions") is not None:
        found.append(set(scalar(body["dimensions"]) or {}))
    for query in blocks(body, "metric_query"):
        for metric in blocks(query, "metric"):
            found.append(set(scalar(metric.get("dimensions")) or {}))
    return found


def expressions(body: dict) -> list[str]:
    return [str(scalar(q.get("expression"))) for q in blocks(body, "metric_query") if q.get("expression") is not None]


def scope_problems(name: str, body: dict) -> list[str]:
    problems = []
    dimension_sets = metric_dimensions(body)
    if not dimension_sets:
        problems.append(f"{name}: reads no metric")
    for dimensions in dimension_sets:
        if not (dimensions & VERSION_DIMENSIONS or ALIAS_DIMENSION in dimensions):
            problems.append(f"{name}: a metric with dimensions {sorted(dimensions)} sees every version together")
    return problems


@pytest.mark.parametrize("output", ["cloudwatch_api_alarm_names", "cloudwatch_ingest_alarm_names"])
def test_every_codedeploy_alarm_is_scoped_to_a_version_or_alias(output):
    names = release_alarm_resources(output)
    assert names
    assert [p for name in names for p in scope_problems(name, alarm(name))] == []


@pytest.mark.parametrize("output", ["cloudwatch_api_alarm_names", "cloudwatch_ingest_alarm_names"])
def test_release_error_alarms_are_rates_with_a_minimum_sample(output):
    rates = [n for n in release_alarm_resources(output) if any("/" in e for e in expressions(alarm(n)))]
    assert rates, f"{output}: no error-rate alarm (metric math errors / invocations)"
    for name in rates:
        (expression,) = [e for e in expressions(alarm(name)) if "/" in e]
        assert re.search(r"IF\(\s*\w+\s*>=", expression), f"{name}: {expression} has no minimum sample"


def test_the_api_release_alarms_include_the_apps_own_5xx_answers():
    names = release_alarm_resources("cloudwatch_api_alarm_names")
    app_5xx = [
        n
        for n in names
        for q in blocks(alarm(n), "metric_query")
        for m in blocks(q, "metric")
        if scalar(m.get("metric_name")) == "${local.app_metric_names.api_requests}"
        and (scalar(m.get("dimensions")) or {}).get("StatusClass") == "5xx"
    ]
    assert app_5xx, "no API release alarm reads ludex_api_requests{StatusClass=5xx}"


def test_the_checker_catches_an_alarm_on_all_versions_together():
    body = {"dimensions": [{"FunctionName": "ludex-dev-api"}], "metric_name": ["Errors"]}
    assert scope_problems("errors", body) == [
        "errors: a metric with dimensions ['FunctionName'] sees every version together"
    ]


def test_deployments_run_a_before_allow_traffic_hook():
    service = dict(named_blocks(parse_dir(TERRAFORM_ROOT / "modules" / "service"), "module"))
    assert "release_hook" in service
    hook = parse_dir(TERRAFORM_ROOT / "modules" / "release_hook")
    (function,) = [b for _, b in resources(hook, "aws_lambda_function")]
    assert scalar(function.get("runtime")).startswith("python3.")
    assert named_blocks(hook, "data", "archive_file")
    script = (TERRAFORM_ROOT.parents[1] / ".github" / "scripts" / "canary-deploy.sh").read_text()
    assert "BeforeAllowTraffic" in script
