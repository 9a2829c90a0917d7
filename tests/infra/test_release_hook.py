"""The BeforeAllowTraffic hook's logic, against stand-in AWS clients.

The faults that matter here (a new version that answers 500, a function
error, an alarm that does not exist, the hook's own crash) are ones a local
server cannot be made to produce on cue, so each client is a small stub that
records the calls and answers as the AWS API would.
"""

from __future__ import annotations

import importlib.util
import io
import json
import sys

import pytest

from test_terraform_conventions import TERRAFORM_ROOT

SOURCE = TERRAFORM_ROOT / "modules" / "release_hook" / "src" / "release_hook.py"
spec = importlib.util.spec_from_file_location("release_hook", SOURCE)
hook = importlib.util.module_from_spec(spec)
sys.modules["release_hook"] = hook  # dataclasses look their module up by name
spec.loader.exec_module(hook)

SETTINGS = hook.Settings(
    api_function="ludex-dev-api",
    ingest_function="ludex-dev-ingest",
    release_alarms={
        "ludex-dev-api": ["ludex-dev-api-release-error-rate"],
        "ludex-dev-ingest": ["ludex-dev-ingest-release-error-rate"],
    },
    bucket="ludex-dev-catalog",
    canary_prefix="uploads/canary/",
    canary_key_parameter="/ludex/dev/canary-api-key",
)
EVENT = {"DeploymentId": "d-ABC123", "LifecycleEventHookExecutionId": "hook-1"}


def appspec(function: str, target: str = "7") -> str:
    return json.dumps(
        {
            "version": 0.0,
            "Resources": [
                {
                    function: {
                        "Type": "AWS::Lambda::Function",
                        "Properties": {"Name": function, "Alias": "live", "CurrentVersion": "6", "TargetVersion": target},
                    }
                }
            ],
            "Hooks": [{"BeforeAllowTraffic": "ludex-dev-release-hook"}],
        }
    )


class Recorder:
    def __init__(self):
        self.calls = []

    def record(self, name, **kwargs):
        self.calls.append((name, kwargs))

    def named(self, name):
        return [kwargs for call, kwargs in self.calls if call == name]


class CodeDeploy(Recorder):
    def __init__(self, function, fail=False):
        super().__init__()
        self.function, self.fail = function, fail

    def get_deployment(self, **kwargs):
        self.record("get_deployment", **kwargs)
        if self.fail:
            raise RuntimeError("throttled")
        return {"deploymentInfo": {"applicationName": "ludex-dev", "revision": {"revisionType": "AppSpecContent", "appSpecContent": {"content": appspec(self.function)}}}}

    def put_lifecycle_event_hook_execution_status(self, **kwargs):
        self.record("status", **kwargs)


class CloudWatch(Recorder):
    def __init__(self, existing=True):
        super().__init__()
        self.existing = existing

    def describe_alarms(self, **kwargs):
        self.record("describe_alarms", **kwargs)
        if not self.existing:
            return {"MetricAlarms": []}
        dimensions = [
            {"Name": "FunctionName", "Value": "ludex-dev-api"},
            {"Name": "Resource", "Value": "ludex-dev-api:live"},
            {"Name": "ExecutedVersion", "Value": "6"},
        ]
        return {
            "MetricAlarms": [
                {
                    "AlarmName": name,
                    "AlarmArn": "arn:aws:cloudwatch:eu-west-1:1:alarm:" + name,
                    "ActionsEnabled": True,
                    "AlarmActions": ["arn:aws:sns:eu-west-1:1:ludex-dev-alarms"],
                    "EvaluationPeriods": 1,
                    "Threshold": 0.05,
                    "ComparisonOperator": "GreaterThanThreshold",
                    "TreatMissingData": "notBreaching",
                    "StateValue": "OK",
                    "Metrics": [
                        {"Id": "rate", "Expression": "IF(invocations >= 20, errors / invocations, 0)", "ReturnData": True},
                        {"Id": "errors", "MetricStat": {"Metric": {"Namespace": "AWS/Lambda", "MetricName": "Errors", "Dimensions": dimensions}, "Period": 60, "Stat": "Sum"}, "ReturnData": False},
                    ],
                }
                for name in kwargs["AlarmNames"]
            ]
        }

    def put_metric_alarm(self, **kwargs):
        self.record("put_metric_alarm", **kwargs)


class Lambda(Recorder):
    def __init__(self, answers=None, function_error=False):
        super().__init__()
        self.answers = answers or {}
        self.function_error = function_error

    def invoke(self, **kwargs):
        self.record("invoke", **kwargs)
        payload = json.loads(kwargs["Payload"])
        if self.function_error:
            return {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": io.BytesIO(b'{"errorMessage":"boom"}')}
        if "Records" in payload:
            return {"StatusCode": 200, "Payload": io.BytesIO(b"null")}
        method, path = payload["requestContext"]["http"]["method"], payload["rawPath"]
        default = {"GET": 200, "POST": 201, "DELETE": 204}[method]
        status = self.answers.get((method, path.split("/")[1] if path.count("/") > 1 else path), default)
        body = {}
        if method == "GET" and path.startswith("/games/"):
            body = {"title": hook.canary_game(path.rsplit("/", 1)[1])["title"]}
        answer = {"statusCode": status, "headers": {}, "body": json.dumps(body), "isBase64Encoded": False}
        return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(answer).encode())}


class S3(Recorder):
    def put_object(self, **kwargs):
        self.record("put_object", **kwargs)
        return {"ETag": '"abc"'}


class Ssm(Recorder):
    def __init__(self, value="canary-key"):
        super().__init__()
        self.value = value

    def get_parameter(self, **kwargs):
        self.record("get_parameter", **kwargs)
        return {"Parameter": {"Value": self.value}}


def clients(function="ludex-dev-api", **overrides):
    parts = dict(codedeploy=CodeDeploy(function), cloudwatch=CloudWatch(), lambda_=Lambda(), s3=S3(), ssm=Ssm())
    parts.update(overrides)
    return hook.Clients(**parts)


def reported(c) -> str:
    (status,) = c.codedeploy.named("status")
    assert status["deploymentId"] == "d-ABC123" and status["lifecycleEventHookExecutionId"] == "hook-1"
    return status["status"]


def test_a_healthy_api_version_is_read_written_round_trip_and_reported_succeeded():
    c = clients()
    assert hook.run(EVENT, c, SETTINGS) == "Succeeded"
    assert reported(c) == "Succeeded"
    invokes = c.lambda_.named("invoke")
    assert {(i["FunctionName"], i["Qualifier"]) for i in invokes} == {("ludex-dev-api", "7")}, "only the new version"
    requests = [(json.loads(i["Payload"])["requestContext"]["http"]["method"], json.loads(i["Payload"])["rawPath"]) for i in invokes]
    canary = "/games/ludex-canary-d-abc123"
    assert requests == [("GET", "/healthz"), ("GET", "/games"), ("POST", "/games"), ("GET", canary), ("DELETE", canary)]
    post = json.loads(invokes[2]["Payload"])
    assert post["headers"]["authorization"] == "Bearer canary-key"


def test_the_release_alarms_are_pointed_at_the_new_version_before_the_smoke_test():
    c = clients()
    hook.run(EVENT, c, SETTINGS)
    (put,) = c.cloudwatch.named("put_metric_alarm")
    assert put["AlarmName"] == "ludex-dev-api-release-error-rate"
    dimensions = {d["Name"]: d["Value"] for d in put["Metrics"][1]["MetricStat"]["Metric"]["Dimensions"]}
    assert dimensions == {"FunctionName": "ludex-dev-api", "Resource": "ludex-dev-api:live", "ExecutedVersion": "7"}
    assert put["Metrics"][0]["Expression"].startswith("IF(invocations >= 20")
    assert "StateValue" not in put and "AlarmArn" not in put


@pytest.mark.parametrize(
    "answers",
    [{("GET", "/healthz"): 500}, {("POST", "/games"): 500}, {("DELETE", "games"): 500}],
    ids=["read", "write", "delete"],
)
def test_a_version_that_answers_500_fails_the_deployment(answers):
    c = clients(lambda_=Lambda(answers=answers))
    assert hook.run(EVENT, c, SETTINGS) == "Failed"
    assert reported(c) == "Failed"


def test_a_function_error_of_the_new_version_fails_the_deployment():
    c = clients(lambda_=Lambda(function_error=True))
    assert hook.run(EVENT, c, SETTINGS) == "Failed"


def test_a_missing_canary_key_fails_the_deployment_with_its_reason(caplog):
    c = clients(ssm=Ssm(value="unset"))
    assert hook.run(EVENT, c, SETTINGS) == "Failed"
    assert "/ludex/dev/canary-api-key holds no API key" in caplog.text


def test_a_missing_release_alarm_fails_the_deployment():
    c = clients(cloudwatch=CloudWatch(existing=False))
    assert hook.run(EVENT, c, SETTINGS) == "Failed"
    assert c.lambda_.named("invoke") == [], "no smoke test without the alarms that judge the canary"


def test_the_hook_reports_failed_even_when_it_cannot_read_the_deployment():
    c = clients(codedeploy=CodeDeploy("ludex-dev-api", fail=True))
    assert hook.run(EVENT, c, SETTINGS) == "Failed"
    assert reported(c) == "Failed"


def test_an_ingest_version_ingests_a_one_line_file_from_the_canary_prefix():
    c = clients(function="ludex-dev-ingest")
    assert hook.run(EVENT, c, SETTINGS) == "Succeeded"
    (put,) = c.s3.named("put_object")
    assert put["Bucket"] == "ludex-dev-catalog" and put["Key"] == "uploads/canary/d-ABC123.ndjson"
    assert json.loads(put["Body"].decode())["id"] == "ludex-release-canary"
    (invoke,) = c.lambda_.named("invoke")
    assert (invoke["FunctionName"], invoke["Qualifier"]) == ("ludex-dev-ingest", "7")
    record = json.loads(invoke["Payload"])["Records"][0]["s3"]
    assert record["object"]["key"] == put["Key"] and record["bucket"]["name"] == "ludex-dev-catalog"


def test_an_unknown_function_fails_the_deployment():
    c = clients(function="someone-else")
    assert hook.run(EVENT, c, SETTINGS) == "Failed"
