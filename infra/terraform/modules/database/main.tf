# Optional PostgreSQL 16 store on RDS, reachable only from the functions'
# security group. The master password is generated and rotated by RDS in
# Secrets Manager (manage_master_user_password); nothing secret is in state.
# Optional read replicas (replica_count), and alarms on CPU, free storage,
# connections, replica lag and slow statements (a metric filter on the
# PostgreSQL log's "duration:" lines, which log_min_duration_statement writes).

locals {
  identifier    = "${var.name}-${var.environment}"
  database_name = "ludex"
  username      = "ludex"
  port          = 5432

  slow_statements_metric = "${local.identifier}-slow-statements"
  metric_namespace       = "Ludex/Database"
}

resource "aws_db_subnet_group" "main" {
  name       = local.identifier
  subnet_ids = var.subnet_ids
}

resource "aws_security_group" "database" {
  name        = "${local.identifier}-database"
  description = "PostgreSQL from the functions only"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "database_from_functions" {
  security_group_id            = aws_security_group.database.id
  description                  = "PostgreSQL from the functions"
  referenced_security_group_id = var.client_security_group_id
  ip_protocol                  = "tcp"
  from_port                    = local.port
  to_port                      = local.port
}

resource "aws_db_parameter_group" "postgres" {
  name   = "${local.identifier}-postgres16"
  family = "postgres16"

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }

  parameter {
    # Logs "duration: N ms  statement: …" for every statement slower than this;
    # the slow_statements metric filter counts those lines.
    name  = "log_min_duration_statement"
    value = tostring(var.slow_statement_ms)
  }

  parameter {
    name  = "log_statement"
    value = "ddl"
  }
}

resource "aws_cloudwatch_log_group" "postgres" {
  #checkov:skip=CKV_AWS_338:Retention is a variable: prod keeps a year, dev keeps a few weeks to bound cost.
  for_each = toset(["postgresql", "upgrade"])

  name              = "/aws/rds/instance/${local.identifier}/${each.key}"
  retention_in_days = var.log_retention_in_days
  kms_key_id        = var.kms_key_arn
}

data "aws_iam_policy_document" "monitoring_assume_role" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "monitoring" {
  name                 = "${local.identifier}-rds-monitoring"
  assume_role_policy   = data.aws_iam_policy_document.monitoring_assume_role.json
  permissions_boundary = var.permissions_boundary_arn
}

data "aws_partition" "current" {}

resource "aws_iam_role_policy_attachment" "monitoring" {
  role       = aws_iam_role.monitoring.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

resource "aws_db_instance" "postgres" {
  identifier     = local.identifier
  engine         = "postgres"
  engine_version = "16"
  instance_class = var.instance_class
  port           = local.port
  db_name        = local.database_name
  username       = local.username

  manage_master_user_password   = true
  master_user_secret_kms_key_id = var.kms_key_arn

  allocated_storage     = var.allocated_storage
  max_allocated_storage = var.max_allocated_storage
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = var.kms_key_arn

  db_subnet_group_name   = aws_db_subnet_group.main.name
  vpc_security_group_ids = [aws_security_group.database.id]
  parameter_group_name   = aws_db_parameter_group.postgres.name
  publicly_accessible    = false
  multi_az               = var.multi_az

  iam_database_authentication_enabled = true
  backup_retention_period             = var.backup_retention_period
  copy_tags_to_snapshot               = true
  deletion_protection                 = var.deletion_protection
  skip_final_snapshot                 = false
  final_snapshot_identifier           = "${local.identifier}-final"
  auto_minor_version_upgrade          = true

  enabled_cloudwatch_logs_exports       = ["postgresql", "upgrade"]
  performance_insights_enabled          = var.performance_insights_enabled
  performance_insights_kms_key_id       = var.performance_insights_enabled ? var.kms_key_arn : null
  performance_insights_retention_period = var.performance_insights_enabled ? 7 : null
  monitoring_interval                   = 60
  monitoring_role_arn                   = aws_iam_role.monitoring.arn

  depends_on = [aws_cloudwatch_log_group.postgres]
}

# --- Read replicas (optional) --------------------------------------------------------

resource "aws_db_instance" "replica" {
  #checkov:skip=CKV_AWS_157:A read replica is itself the second copy; Multi-AZ belongs to the primary (db_multi_az).
  #checkov:skip=CKV_AWS_133:The primary keeps the automated backups and point-in-time recovery; a replica is rebuilt from the primary.
  count = var.replica_count

  identifier          = "${local.identifier}-replica-${count.index + 1}"
  replicate_source_db = aws_db_instance.postgres.identifier
  instance_class      = var.replica_instance_class == null ? var.instance_class : var.replica_instance_class
  port                = local.port

  storage_type      = "gp3"
  storage_encrypted = true
  kms_key_id        = var.kms_key_arn

  vpc_security_group_ids = [aws_security_group.database.id]
  parameter_group_name   = aws_db_parameter_group.postgres.name
  publicly_accessible    = false
  multi_az               = false

  iam_database_authentication_enabled = true
  backup_retention_period             = 0
  copy_tags_to_snapshot               = true
  deletion_protection                 = var.deletion_protection
  skip_final_snapshot                 = true
  auto_minor_version_upgrade          = true

  enabled_cloudwatch_logs_exports       = ["postgresql"]
  performance_insights_enabled          = var.performance_insights_enabled
  performance_insights_kms_key_id       = var.performance_insights_enabled ? var.kms_key_arn : null
  performance_insights_retention_period = var.performance_insights_enabled ? 7 : null
  monitoring_interval                   = 60
  monitoring_role_arn                   = aws_iam_role.monitoring.arn

  depends_on = [aws_cloudwatch_log_group.replica]
}

resource "aws_cloudwatch_log_group" "replica" {
  #checkov:skip=CKV_AWS_338:Retention is a variable: prod keeps a year, dev keeps a few weeks to bound cost.
  count = var.replica_count

  name              = "/aws/rds/instance/${local.identifier}-replica-${count.index + 1}/postgresql"
  retention_in_days = var.log_retention_in_days
  kms_key_id        = var.kms_key_arn
}

# --- Alarms ------------------------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "cpu" {
  alarm_name          = "${local.identifier}-cpu"
  alarm_description   = "The database's CPU stayed above ${var.cpu_threshold_percent} % for 15 minutes."
  namespace           = "AWS/RDS"
  metric_name         = "CPUUtilization"
  dimensions          = { DBInstanceIdentifier = aws_db_instance.postgres.identifier }
  statistic           = "Average"
  period              = 300
  evaluation_periods  = 3
  threshold           = var.cpu_threshold_percent
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "missing"
  alarm_actions       = [var.alarm_topic_arn]
  ok_actions          = [var.alarm_topic_arn]
}

resource "aws_cloudwatch_metric_alarm" "free_storage" {
  alarm_name          = "${local.identifier}-free-storage"
  alarm_description   = "The database has less than ${var.free_storage_threshold_gib} GiB of free storage (autoscaling stops at max_allocated_storage)."
  namespace           = "AWS/RDS"
  metric_name         = "FreeStorageSpace"
  dimensions          = { DBInstanceIdentifier = aws_db_instance.postgres.identifier }
  statistic           = "Minimum"
  period              = 300
  evaluation_periods  = 1
  threshold           = var.free_storage_threshold_gib * 1024 * 1024 * 1024
  comparison_operator = "LessThanThreshold"
  treat_missing_data  = "missing"
  alarm_actions       = [var.alarm_topic_arn]
  ok_actions          = [var.alarm_topic_arn]
}

resource "aws_cloudwatch_metric_alarm" "connections" {
  alarm_name          = "${local.identifier}-connections"
  alarm_description   = "More than ${var.connections_threshold} connections to the database for 10 minutes (each function instance holds a pool)."
  namespace           = "AWS/RDS"
  metric_name         = "DatabaseConnections"
  dimensions          = { DBInstanceIdentifier = aws_db_instance.postgres.identifier }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 2
  threshold           = var.connections_threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "missing"
  alarm_actions       = [var.alarm_topic_arn]
  ok_actions          = [var.alarm_topic_arn]
}

resource "aws_cloudwatch_metric_alarm" "replica_lag" {
  count = var.replica_count

  alarm_name          = "${aws_db_instance.replica[count.index].identifier}-lag"
  alarm_description   = "The read replica ${aws_db_instance.replica[count.index].identifier} is more than ${var.replica_lag_threshold_seconds} s behind the primary."
  namespace           = "AWS/RDS"
  metric_name         = "ReplicaLag"
  dimensions          = { DBInstanceIdentifier = aws_db_instance.replica[count.index].identifier }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  threshold           = var.replica_lag_threshold_seconds
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "breaching"
  alarm_actions       = [var.alarm_topic_arn]
  ok_actions          = [var.alarm_topic_arn]
}

# log_min_duration_statement writes "LOG:  duration: 612.3 ms  statement: …".
resource "aws_cloudwatch_log_metric_filter" "slow_queries" {
  name           = local.slow_statements_metric
  log_group_name = aws_cloudwatch_log_group.postgres["postgresql"].name
  pattern        = "\"duration:\""

  metric_transformation {
    name          = local.slow_statements_metric
    namespace     = local.metric_namespace
    value         = "1"
    default_value = "0"
    unit          = "Count"
  }
}

resource "aws_cloudwatch_metric_alarm" "slow_queries" {
  alarm_name          = "${local.identifier}-slow-queries"
  alarm_description   = "More than ${var.slow_statements_threshold} statements took over ${var.slow_statement_ms} ms in 5 minutes; see the postgresql log group."
  namespace           = local.metric_namespace
  metric_name         = local.slow_statements_metric
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = var.slow_statements_threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [var.alarm_topic_arn]
  ok_actions          = [var.alarm_topic_arn]
}
