# Dashboard, alarms and their SNS topic for one environment, plus an optional
# export of the log groups to S3 (subscription filter -> Kinesis Data Firehose).

data "aws_caller_identity" "current" {}

data "aws_region" "current" {}

data "aws_partition" "current" {}

locals {
  prefix     = "${var.name}-${var.environment}"
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.region

  # The application's own metrics (CloudWatch EMF written by the telemetry
  # module). These names are the contract with the Rust code; tests read them
  # from here.
  app_metric_namespace = "Ludex"
  app_metric_names = {
    ingest_records_accepted  = "ludex_ingest_records_accepted"
    ingest_records_rejected  = "ludex_ingest_records_rejected"
    ingest_files             = "ludex_ingest_files"
    ingest_bytes             = "ludex_ingest_bytes"
    ingest_stage_duration_ms = "ludex_ingest_stage_duration_ms"
    ingest_write_retries     = "ludex_ingest_write_retries"
    ingest_claims_lost       = "ludex_ingest_claims_lost"
    api_requests             = "ludex_api_requests"
    api_latency_ms           = "ludex_api_latency_ms"
  }
  ingest_stages = ["download", "parse", "validate", "write", "report"]

  functions = {
    api    = var.api_function_name
    ingest = var.ingest_function_name
  }
  duration_p99_threshold_ms = {
    api    = var.api_duration_p99_threshold_ms
    ingest = var.ingest_duration_p99_threshold_ms
  }

  # The release alarms judge one version: the one the live alias serves, which
  # Terraform reads back from the alias on every apply, and during a
  # deployment the new one (the BeforeAllowTraffic hook re-points them).
  live_versions = {
    api    = var.api_function_live_version
    ingest = var.ingest_function_live_version
  }
  aliases = {
    api    = var.api_function_alias_name
    ingest = var.ingest_function_alias_name
  }

  export_logs = var.enable_log_export && length(var.log_group_names) > 0
}

# --- Alarm topic -------------------------------------------------------------------

resource "aws_sns_topic" "alarms" {
  name              = "${local.prefix}-alarms"
  kms_master_key_id = var.kms_key_arn
}

resource "aws_sns_topic_subscription" "alarm_email" {
  count = var.alarm_email == null ? 0 : 1

  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

# --- Function alarms (both functions) --------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "function_errors" {
  for_each = local.functions

  alarm_name          = "${each.value}-errors"
  alarm_description   = "${each.value} returned errors."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = each.value }
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "function_throttles" {
  for_each = local.functions

  alarm_name          = "${each.value}-throttles"
  alarm_description   = "${each.value} hit its reserved concurrency."
  namespace           = "AWS/Lambda"
  metric_name         = "Throttles"
  dimensions          = { FunctionName = each.value }
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "function_duration_p99" {
  for_each = local.functions

  alarm_name          = "${each.value}-duration-p99"
  alarm_description   = "${each.value} p99 duration above ${local.duration_p99_threshold_ms[each.key]} ms."
  namespace           = "AWS/Lambda"
  metric_name         = "Duration"
  dimensions          = { FunctionName = each.value }
  extended_statistic  = "p99"
  period              = 300
  evaluation_periods  = 1
  threshold           = local.duration_p99_threshold_ms[each.key]
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

# --- Release alarms (CodeDeploy stops and rolls back on them) ----------------------------
# Scoped to one version through the alias (Resource, ExecutedVersion), as
# rates, and quiet below release_min_invocations: with 10 % of little traffic
# an absolute count over all versions would never fire for the new version.

resource "aws_cloudwatch_metric_alarm" "release_error_rate" {
  for_each = local.functions

  alarm_name          = "${each.value}-release-error-rate"
  alarm_description   = "The version ${each.value}:${local.aliases[each.key]} runs failed more than ${var.release_error_rate_threshold * 100} % of at least ${var.release_min_invocations} invocations in a minute."
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.release_error_rate_threshold
  evaluation_periods  = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]

  metric_query {
    id          = "rate"
    expression  = "IF(invocations >= ${var.release_min_invocations}, errors / invocations, 0)"
    label       = "error rate of the version"
    return_data = true
  }

  metric_query {
    id = "errors"

    metric {
      namespace   = "AWS/Lambda"
      metric_name = "Errors"
      dimensions  = { FunctionName = each.value, Resource = "${each.value}:${local.aliases[each.key]}", ExecutedVersion = local.live_versions[each.key] }
      period      = 60
      stat        = "Sum"
    }
  }

  metric_query {
    id = "invocations"

    metric {
      namespace   = "AWS/Lambda"
      metric_name = "Invocations"
      dimensions  = { FunctionName = each.value, Resource = "${each.value}:${local.aliases[each.key]}", ExecutedVersion = local.live_versions[each.key] }
      period      = 60
      stat        = "Sum"
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "release_duration_p99" {
  for_each = local.functions

  alarm_name          = "${each.value}-release-duration-p99"
  alarm_description   = "The version ${each.value}:${local.aliases[each.key]} runs took more than ${local.duration_p99_threshold_ms[each.key]} ms at p99 over at least ${var.release_min_invocations} invocations in 5 minutes."
  comparison_operator = "GreaterThanThreshold"
  threshold           = local.duration_p99_threshold_ms[each.key]
  evaluation_periods  = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]

  metric_query {
    id          = "judged"
    expression  = "IF(invocations >= ${var.release_min_invocations}, p99, 0)"
    label       = "p99 duration of the version"
    return_data = true
  }

  metric_query {
    id = "p99"

    metric {
      namespace   = "AWS/Lambda"
      metric_name = "Duration"
      dimensions  = { FunctionName = each.value, Resource = "${each.value}:${local.aliases[each.key]}", ExecutedVersion = local.live_versions[each.key] }
      period      = 300
      stat        = "p99"
    }
  }

  metric_query {
    id = "invocations"

    metric {
      namespace   = "AWS/Lambda"
      metric_name = "Invocations"
      dimensions  = { FunctionName = each.value, Resource = "${each.value}:${local.aliases[each.key]}", ExecutedVersion = local.live_versions[each.key] }
      period      = 300
      stat        = "Sum"
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "release_throttles" {
  for_each = local.functions

  alarm_name          = "${each.value}-release-throttles"
  alarm_description   = "Invocations of ${each.value}:${local.aliases[each.key]} were throttled."
  namespace           = "AWS/Lambda"
  metric_name         = "Throttles"
  dimensions          = { FunctionName = each.value, Resource = "${each.value}:${local.aliases[each.key]}" }
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

# The application's own 5xx answers: Lambda counts a handled 500 as a success.
# Reads ludex_api_requests with the FunctionVersion dimension (the version that
# served the request, from AWS_LAMBDA_FUNCTION_VERSION): the API function emits
# the dimension sets [FunctionVersion] and [FunctionVersion, StatusClass] (a Rust
# test checks them against the dimensions read here; docs/ci-cd.md).
resource "aws_cloudwatch_metric_alarm" "release_api_5xx_rate" {
  alarm_name          = "${var.api_function_name}-release-5xx-rate"
  alarm_description   = "The version ${var.api_function_name}:${var.api_function_alias_name} runs answered more than ${var.release_5xx_rate_threshold * 100} % of at least ${var.release_min_invocations} requests in a minute with a 5xx."
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.release_5xx_rate_threshold
  evaluation_periods  = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]

  metric_query {
    id          = "rate"
    expression  = "IF(requests >= ${var.release_min_invocations}, FILL(server_errors, 0) / requests, 0)"
    label       = "5xx rate of the version"
    return_data = true
  }

  metric_query {
    id = "server_errors"

    metric {
      namespace   = local.app_metric_namespace
      metric_name = local.app_metric_names.api_requests
      dimensions  = { FunctionVersion = local.live_versions.api, StatusClass = "5xx" }
      period      = 60
      stat        = "Sum"
    }
  }

  metric_query {
    id = "requests"

    metric {
      namespace   = local.app_metric_namespace
      metric_name = local.app_metric_names.api_requests
      dimensions  = { FunctionVersion = local.live_versions.api }
      period      = 60
      stat        = "Sum"
    }
  }
}

# --- API and ingest alarms ----------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "http_api_5xx" {
  alarm_name          = "${local.prefix}-http-api-5xx"
  alarm_description   = "The HTTP API answered with more than ${var.api_5xx_threshold} 5xx responses in a minute."
  namespace           = "AWS/ApiGateway"
  metric_name         = "5xx"
  dimensions          = { ApiId = var.http_api_id }
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 1
  threshold           = var.api_5xx_threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "ingest_rejected" {
  alarm_name          = "${local.prefix}-ingest-rejected"
  alarm_description   = "More than ${var.ingest_rejected_threshold} upload records were rejected in 5 minutes; see rejected/ for the reports."
  namespace           = local.app_metric_namespace
  metric_name         = local.app_metric_names.ingest_records_rejected
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = var.ingest_rejected_threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "ingest_dlq_depth" {
  alarm_name          = "${local.prefix}-ingest-dlq-depth"
  alarm_description   = "S3 events that the ingest function could not process are waiting in ${var.dlq_name}."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = var.dlq_name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

# --- Dashboard ---------------------------------------------------------------------------

locals {
  lambda_metric = {
    for key, function_name in local.functions : key => {
      invocations = ["AWS/Lambda", "Invocations", "FunctionName", function_name, { stat = "Sum", label = "${key} invocations" }]
      errors      = ["AWS/Lambda", "Errors", "FunctionName", function_name, { stat = "Sum", label = "${key} errors" }]
      throttles   = ["AWS/Lambda", "Throttles", "FunctionName", function_name, { stat = "Sum", label = "${key} throttles" }]
      p50         = ["AWS/Lambda", "Duration", "FunctionName", function_name, { stat = "p50", label = "${key} p50" }]
      p99         = ["AWS/Lambda", "Duration", "FunctionName", function_name, { stat = "p99", label = "${key} p99" }]
    }
  }

  app_metric = {
    for key, metric_name in local.app_metric_names : key => [local.app_metric_namespace, metric_name, { stat = "Sum" }]
  }

  dashboard_widgets = [
    {
      title   = "Lambda invocations"
      metrics = [local.lambda_metric.api.invocations, local.lambda_metric.ingest.invocations]
    },
    {
      title = "Lambda errors and throttles"
      metrics = [
        local.lambda_metric.api.errors, local.lambda_metric.ingest.errors,
        local.lambda_metric.api.throttles, local.lambda_metric.ingest.throttles,
      ]
    },
    {
      title = "Lambda duration p50 / p99 (ms)"
      metrics = [
        local.lambda_metric.api.p50, local.lambda_metric.api.p99,
        local.lambda_metric.ingest.p50, local.lambda_metric.ingest.p99,
      ]
    },
    {
      title = "HTTP API responses"
      metrics = [
        ["AWS/ApiGateway", "Count", "ApiId", var.http_api_id, { stat = "Sum", label = "requests" }],
        ["AWS/ApiGateway", "4xx", "ApiId", var.http_api_id, { stat = "Sum", label = "4xx" }],
        ["AWS/ApiGateway", "5xx", "ApiId", var.http_api_id, { stat = "Sum", label = "5xx" }],
      ]
    },
    {
      title = "HTTP API latency (ms)"
      metrics = [
        ["AWS/ApiGateway", "Latency", "ApiId", var.http_api_id, { stat = "p50", label = "p50" }],
        ["AWS/ApiGateway", "Latency", "ApiId", var.http_api_id, { stat = "p99", label = "p99" }],
        ["AWS/ApiGateway", "IntegrationLatency", "ApiId", var.http_api_id, { stat = "p99", label = "integration p99" }],
      ]
    },
    {
      title = "Ingest records and files"
      metrics = [
        local.app_metric.ingest_records_accepted,
        local.app_metric.ingest_records_rejected,
        local.app_metric.ingest_files,
        local.app_metric.ingest_write_retries,
        local.app_metric.ingest_claims_lost,
      ]
    },
    {
      title   = "Ingest bytes"
      metrics = [local.app_metric.ingest_bytes]
    },
    {
      title = "Ingest stage duration p99 (ms)"
      metrics = [
        for stage in local.ingest_stages :
        [local.app_metric_namespace, local.app_metric_names.ingest_stage_duration_ms, "Stage", stage, { stat = "p99", label = stage }]
      ]
    },
    {
      title = "API requests by route and status class"
      metrics = [[{
        expression = "SEARCH('{${local.app_metric_namespace},Route,StatusClass} MetricName=\"${local.app_metric_names.api_requests}\"', 'Sum', 60)"
        id         = "requests"
      }]]
    },
    {
      title = "API latency p99 by route (ms)"
      metrics = [[{
        expression = "SEARCH('{${local.app_metric_namespace},Route} MetricName=\"${local.app_metric_names.api_latency_ms}\"', 'p99', 60)"
        id         = "latency"
      }]]
    },
    {
      title   = "Ingest dead-letter queue depth"
      metrics = [["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", var.dlq_name, { stat = "Maximum" }]]
    },
  ]
}

resource "aws_cloudwatch_dashboard" "main" {
  dashboard_name = local.prefix

  dashboard_body = jsonencode({
    widgets = [
      for index, widget in local.dashboard_widgets : {
        type   = "metric"
        x      = (index % 2) * 12
        y      = floor(index / 2) * 6
        width  = 12
        height = 6
        properties = {
          title   = widget.title
          metrics = widget.metrics
          region  = local.region
          view    = "timeSeries"
          stacked = false
          period  = 60
        }
      }
    ]
  })
}

# --- Optional log export to S3 ----------------------------------------------------------

resource "aws_cloudwatch_log_group" "firehose_errors" {
  #checkov:skip=CKV_AWS_338:Retention is a variable: prod keeps a year, dev keeps a few weeks to bound cost.
  count = local.export_logs ? 1 : 0

  name              = "/aws/kinesisfirehose/${local.prefix}-logs"
  retention_in_days = var.log_retention_in_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_cloudwatch_log_stream" "firehose_errors" {
  count = local.export_logs ? 1 : 0

  name           = "S3Delivery"
  log_group_name = aws_cloudwatch_log_group.firehose_errors[0].name
}

data "aws_iam_policy_document" "firehose_assume_role" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["firehose.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "sts:ExternalId"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "firehose" {
  count = local.export_logs ? 1 : 0

  name                 = "${local.prefix}-logs-firehose"
  assume_role_policy   = data.aws_iam_policy_document.firehose_assume_role.json
  permissions_boundary = var.permissions_boundary_arn
}

data "aws_iam_policy_document" "firehose" {
  count = local.export_logs ? 1 : 0

  statement {
    sid       = "LocateExportBucket"
    actions   = ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"]
    resources = [var.log_export_bucket_arn]
  }

  statement {
    sid       = "WriteExportedLogs"
    actions   = ["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"]
    resources = ["${var.log_export_bucket_arn}/cloudwatch-logs/*"]
  }

  statement {
    sid       = "EncryptExportedLogs"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [var.kms_key_arn]
  }

  statement {
    sid       = "ReportDeliveryErrors"
    actions   = ["logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.firehose_errors[0].arn}:*"]
  }
}

resource "aws_iam_role_policy" "firehose" {
  count = local.export_logs ? 1 : 0

  name   = "${local.prefix}-logs-firehose-access"
  role   = aws_iam_role.firehose[0].id
  policy = data.aws_iam_policy_document.firehose[0].json
}

resource "aws_kinesis_firehose_delivery_stream" "logs" {
  count = local.export_logs ? 1 : 0

  name        = "${local.prefix}-logs"
  destination = "extended_s3"

  server_side_encryption {
    enabled  = true
    key_type = "CUSTOMER_MANAGED_CMK"
    key_arn  = var.kms_key_arn
  }

  extended_s3_configuration {
    role_arn            = aws_iam_role.firehose[0].arn
    bucket_arn          = var.log_export_bucket_arn
    kms_key_arn         = var.kms_key_arn
    prefix              = "cloudwatch-logs/"
    error_output_prefix = "cloudwatch-logs-errors/!{firehose:error-output-type}/"
    buffering_size      = 5
    buffering_interval  = 300
    # CloudWatch Logs already delivers gzip-compressed batches.
    compression_format = "UNCOMPRESSED"

    cloudwatch_logging_options {
      enabled         = true
      log_group_name  = aws_cloudwatch_log_group.firehose_errors[0].name
      log_stream_name = aws_cloudwatch_log_stream.firehose_errors[0].name
    }
  }

  lifecycle {
    precondition {
      condition     = var.log_export_bucket_arn != null
      error_message = "log_export_bucket_arn is required when enable_log_export is true."
    }
  }
}

data "aws_iam_policy_document" "logs_assume_role" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:*"]
    }
  }
}

resource "aws_iam_role" "logs_to_firehose" {
  count = local.export_logs ? 1 : 0

  name                 = "${local.prefix}-logs-to-firehose"
  assume_role_policy   = data.aws_iam_policy_document.logs_assume_role.json
  permissions_boundary = var.permissions_boundary_arn
}

data "aws_iam_policy_document" "logs_to_firehose" {
  count = local.export_logs ? 1 : 0

  statement {
    sid       = "DeliverToExportStream"
    actions   = ["firehose:PutRecord", "firehose:PutRecordBatch"]
    resources = [aws_kinesis_firehose_delivery_stream.logs[0].arn]
  }
}

resource "aws_iam_role_policy" "logs_to_firehose" {
  count = local.export_logs ? 1 : 0

  name   = "${local.prefix}-logs-to-firehose-access"
  role   = aws_iam_role.logs_to_firehose[0].id
  policy = data.aws_iam_policy_document.logs_to_firehose[0].json
}

resource "aws_cloudwatch_log_subscription_filter" "export" {
  for_each = local.export_logs ? toset(var.log_group_names) : toset([])

  name            = "${local.prefix}-export-to-s3"
  log_group_name  = each.value
  filter_pattern  = ""
  destination_arn = aws_kinesis_firehose_delivery_stream.logs[0].arn
  role_arn        = aws_iam_role.logs_to_firehose[0].arn
}
