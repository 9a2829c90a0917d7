"""The optional PostgreSQL store is watched: replica, alarms, slow queries."""

from __future__ import annotations

from test_terraform_conventions import TERRAFORM_ROOT, blocks, named_blocks, parse_dir, resources, scalar

DATABASE = TERRAFORM_ROOT / "modules" / "database"


def doc():
    return parse_dir(DATABASE)


def test_an_optional_read_replica_is_counted_and_its_endpoint_exported():
    variables = dict(named_blocks(doc(), "variable"))
    assert scalar(variables["replica_count"].get("default")) == 0
    (replica,) = [b for n, b in resources(doc(), "aws_db_instance") if n == "replica"]
    assert scalar(replica.get("count")) == "${var.replica_count}"
    assert "aws_db_instance.postgres" in str(scalar(replica.get("replicate_source_db")))
    outputs = dict(named_blocks(doc(), "output"))
    assert "aws_db_instance.replica" in str(scalar(outputs["db_instance_replica_addresses"]["value"]))
    for env in ("dev", "staging", "prod"):
        env_outputs = dict(named_blocks(parse_dir(TERRAFORM_ROOT / "envs" / env), "output"))
        assert "db_instance_replica_addresses" in env_outputs, env


def test_the_database_has_cpu_storage_connection_lag_and_slow_query_alarms():
    alarms = {n: b for n, b in resources(doc(), "aws_cloudwatch_metric_alarm")}
    metrics = {n: scalar(b.get("metric_name")) for n, b in alarms.items()}
    assert {"CPUUtilization", "FreeStorageSpace", "DatabaseConnections", "ReplicaLag"} <= set(metrics.values())
    (slow,) = [b for n, b in alarms.items() if n == "slow_queries"]
    (metric_filter,) = [b for _, b in resources(doc(), "aws_cloudwatch_log_metric_filter")]
    (transformation,) = blocks(metric_filter, "metric_transformation")
    assert scalar(slow.get("metric_name")) == "${aws_cloudwatch_log_metric_filter.slow_queries.metric_transformation[0].name}" or scalar(
        slow.get("metric_name")
    ) == scalar(transformation.get("name"))
    assert "duration" in str(scalar(metric_filter.get("pattern")))
    assert "postgresql" in str(scalar(metric_filter.get("log_group_name")))
    for body in alarms.values():
        assert scalar(body.get("alarm_actions")) is not None


def test_statements_slower_than_the_threshold_are_logged_with_their_duration():
    (group,) = [b for _, b in resources(doc(), "aws_db_parameter_group")]
    parameters = {scalar(p.get("name")): scalar(p.get("value")) for p in blocks(group, "parameter")}
    assert parameters.get("log_min_duration_statement") not in (None, "-1")
