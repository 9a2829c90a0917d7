"""BeforeAllowTraffic hook of ludex's CodeDeploy deployments.

CodeDeploy calls this function after it has published the new version and
before it shifts any traffic to it. The hook:

1. reads from the deployment which function and version are being released;
2. points that function's release alarms at the new version (the alarms watch
   one version, ExecutedVersion / FunctionVersion, and Terraform leaves them on
   the version the alias served at the last apply);
3. invokes the new version directly with a smoke test: for the API a read, and
   a write round trip on a canary record (create, read back, delete) with the
   canary API key; for ingest, an ingest of a one-line file;
4. reports Succeeded or Failed to CodeDeploy. It always reports: a failure of
   any step, including its own, fails the deployment, and CodeDeploy leaves the
   alias on the old version.

Settings come from the environment (set by Terraform, modules/release_hook):
API_FUNCTION_NAME, INGEST_FUNCTION_NAME, RELEASE_ALARMS (JSON: function name
-> alarm names), BUCKET, CANARY_PREFIX, CANARY_KEY_PARAMETER.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import time
from dataclasses import dataclass

log = logging.getLogger()
log.setLevel(logging.INFO)

VERSION_DIMENSIONS = ("ExecutedVersion", "FunctionVersion")
# PutMetricAlarm takes back what DescribeAlarms returns under these names.
ALARM_FIELDS = (
    "AlarmName",
    "AlarmDescription",
    "ActionsEnabled",
    "OKActions",
    "AlarmActions",
    "InsufficientDataActions",
    "EvaluationPeriods",
    "DatapointsToAlarm",
    "Threshold",
    "ComparisonOperator",
    "TreatMissingData",
    "EvaluateLowSampleCountPercentile",
    "Namespace",
    "MetricName",
    "Statistic",
    "ExtendedStatistic",
    "Period",
    "Unit",
)
UNSET_KEY = "unset"


class SmokeTestFailed(Exception):
    pass


@dataclass(frozen=True)
class Settings:
    api_function: str
    ingest_function: str
    release_alarms: dict[str, list[str]]
    bucket: str
    canary_prefix: str
    canary_key_parameter: str

    @classmethod
    def from_environment(cls, env=os.environ) -> "Settings":
        return cls(
            api_function=env["API_FUNCTION_NAME"],
            ingest_function=env["INGEST_FUNCTION_NAME"],
            release_alarms=json.loads(env["RELEASE_ALARMS"]),
            bucket=env["BUCKET"],
            canary_prefix=env["CANARY_PREFIX"],
            canary_key_parameter=env["CANARY_KEY_PARAMETER"],
        )


@dataclass(frozen=True)
class Clients:
    codedeploy: object
    cloudwatch: object
    lambda_: object
    s3: object
    ssm: object

    @classmethod
    def from_boto3(cls) -> "Clients":
        import boto3

        return cls(*(boto3.client(name) for name in ("codedeploy", "cloudwatch", "lambda", "s3", "ssm")))


@dataclass(frozen=True)
class Target:
    function: str
    alias: str
    version: str


def handler(event, _context):
    return run(event, Clients.from_boto3(), Settings.from_environment())


def run(event: dict, clients: Clients, settings: Settings) -> str:
    deployment_id = event["DeploymentId"]
    status = "Failed"
    try:
        target = target_of(clients.codedeploy, deployment_id)
        log.info("deployment %s releases %s version %s", deployment_id, target.function, target.version)
        point_alarms_at(clients.cloudwatch, settings.release_alarms.get(target.function, []), target.version)
        if target.function == settings.api_function:
            smoke_test_api(clients, settings, target, deployment_id)
        elif target.function == settings.ingest_function:
            smoke_test_ingest(clients, settings, target, deployment_id)
        else:
            raise SmokeTestFailed(f"deployment {deployment_id} releases {target.function}, which this hook does not know")
        status = "Succeeded"
    except Exception:  # any failure, ours included, must fail the deployment, not hang it
        log.exception("release check of deployment %s failed", deployment_id)
    finally:
        clients.codedeploy.put_lifecycle_event_hook_execution_status(
            deploymentId=deployment_id,
            lifecycleEventHookExecutionId=event["LifecycleEventHookExecutionId"],
            status=status,
        )
    log.info("deployment %s: %s", deployment_id, status)
    return status


# --- What is being released -----------------------------------------------------------


def target_of(codedeploy, deployment_id: str) -> Target:
    """The function, alias and new version from the deployment's AppSpec (JSON, see canary-deploy.sh)."""
    info = codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    revision = info["revision"]
    content = (revision.get("appSpecContent") or {}).get("content")
    if content is None:
        content = codedeploy.get_application_revision(applicationName=info["applicationName"], revision=revision)[
            "revision"
        ]["appSpecContent"]["content"]
    (resource,) = json.loads(content)["Resources"]
    (properties,) = [entry["Properties"] for entry in resource.values()]
    return Target(function=properties["Name"], alias=properties["Alias"], version=str(properties["TargetVersion"]))


# --- Alarms -----------------------------------------------------------------------------


def point_alarms_at(cloudwatch, alarm_names: list[str], version: str) -> None:
    """Rewrites each alarm's version dimension to `version`, keeping everything else as it is."""
    if not alarm_names:
        return
    alarms = cloudwatch.describe_alarms(AlarmNames=alarm_names, AlarmTypes=["MetricAlarm"])["MetricAlarms"]
    found = {alarm["AlarmName"] for alarm in alarms}
    missing = sorted(set(alarm_names) - found)
    if missing:
        raise SmokeTestFailed(f"release alarms not found: {missing}")
    for alarm in alarms:
        request = {field: alarm[field] for field in ALARM_FIELDS if alarm.get(field) is not None}
        if alarm.get("Dimensions"):
            request["Dimensions"] = with_version(alarm["Dimensions"], version)
        if alarm.get("Metrics"):
            request["Metrics"] = [with_query_version(query, version) for query in alarm["Metrics"]]
        cloudwatch.put_metric_alarm(**request)


def with_version(dimensions: list[dict], version: str) -> list[dict]:
    return [
        {"Name": d["Name"], "Value": version if d["Name"] in VERSION_DIMENSIONS else d["Value"]} for d in dimensions
    ]


def with_query_version(query: dict, version: str) -> dict:
    query = json.loads(json.dumps(query))
    metric = (query.get("MetricStat") or {}).get("Metric")
    if metric and metric.get("Dimensions"):
        metric["Dimensions"] = with_version(metric["Dimensions"], version)
    return query


# --- Smoke tests ---------------------------------------------------------------------------


def invoke(clients: Clients, target: Target, payload: dict) -> dict:
    """Invokes exactly the new version and returns its parsed answer; a function error fails the test."""
    response = clients.lambda_.invoke(
        FunctionName=target.function,
        Qualifier=target.version,
        InvocationType="RequestResponse",
        Payload=json.dumps(payload).encode(),
    )
    body = response["Payload"].read()
    if response.get("FunctionError"):
        raise SmokeTestFailed(f"{target.function}:{target.version} failed: {body[:500]!r}")
    return json.loads(body or b"null")


def http_event(method: str, path: str, query: str = "", body: dict | None = None, key: str | None = None) -> dict:
    """An API Gateway HTTP API (payload 2.0) event, as the $default route sends it."""
    headers = {"host": "release-hook.invalid", "accept": "application/json", "user-agent": "ludex-release-hook"}
    if body is not None:
        headers["content-type"] = "application/json"
    if key is not None:
        headers["authorization"] = f"Bearer {key}"
    now = time.time()
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "release-hook",
            "domainName": "release-hook.invalid",
            "domainPrefix": "release-hook",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "ludex-release-hook",
            },
            "requestId": f"release-hook-{int(now * 1000)}",
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "body": None if body is None else json.dumps(body),
        "isBase64Encoded": False,
    }


def expect(answer: dict, status: int, what: str) -> dict:
    got = answer.get("statusCode") if isinstance(answer, dict) else None
    text = (answer or {}).get("body") or ""
    if (answer or {}).get("isBase64Encoded"):
        text = base64.b64decode(text).decode(errors="replace")
    if got != status:
        raise SmokeTestFailed(f"{what}: expected {status}, got {got}: {text[:300]}")
    return json.loads(text) if text.strip().startswith(("{", "[")) else {}


def canary_game(game_id: str) -> dict:
    return {
        "id": game_id,
        "title": f"ludex release canary {game_id}",
        "platforms": ["PC"],
        "genres": ["Test"],
        "release_date": "2000-01-01",
        "developer": "ludex",
        "publisher": "ludex",
        "rating": 5.0,
        "price": 0.0,
        "currency": "USD",
        "tags": ["release-canary"],
    }


def canary_key(clients: Clients, settings: Settings) -> str:
    value = clients.ssm.get_parameter(Name=settings.canary_key_parameter, WithDecryption=True)["Parameter"]["Value"]
    if value.strip() in ("", UNSET_KEY):
        raise SmokeTestFailed(f"{settings.canary_key_parameter} holds no API key (docs/deploy.md, step 6)")
    return value.strip()


def smoke_test_api(clients: Clients, settings: Settings, target: Target, deployment_id: str) -> None:
    key = canary_key(clients, settings)
    game_id = f"ludex-canary-{deployment_id.lower()}"
    expect(invoke(clients, target, http_event("GET", "/healthz")), 200, "GET /healthz")
    expect(invoke(clients, target, http_event("GET", "/games", "limit=1")), 200, "GET /games?limit=1")
    expect(invoke(clients, target, http_event("POST", "/games", body=canary_game(game_id), key=key)), 201, "POST /games")
    try:
        read = expect(invoke(clients, target, http_event("GET", f"/games/{game_id}")), 200, f"GET /games/{game_id}")
        if read.get("title") != canary_game(game_id)["title"]:
            raise SmokeTestFailed(f"GET /games/{game_id} returned {read.get('title')!r}, not what was written")
    finally:
        expect(invoke(clients, target, http_event("DELETE", f"/games/{game_id}", key=key)), 204, f"DELETE /games/{game_id}")


def smoke_test_ingest(clients: Clients, settings: Settings, target: Target, deployment_id: str) -> None:
    key = f"{settings.canary_prefix}{deployment_id}.ndjson"
    # One fixed canary record: every release overwrites the same one.
    line = json.dumps(canary_game("ludex-release-canary")) + "\n"
    put = clients.s3.put_object(Bucket=settings.bucket, Key=key, Body=line.encode(), ContentType="application/x-ndjson")
    event = {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "eventTime": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "bucket": {"name": settings.bucket, "arn": f"arn:aws:s3:::{settings.bucket}"},
                    "object": {"key": key, "size": len(line.encode()), "eTag": put.get("ETag", "").strip('"')},
                },
            }
        ]
    }
    invoke(clients, target, event)
