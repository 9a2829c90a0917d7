# The S3-triggered ingest function: ZIP package on provided.al2023/arm64,
# published versions behind the `live` alias (shifted by CodeDeploy), failed
# asynchronous events kept in an SQS dead-letter queue, and the bucket
# notification that invokes the alias.

data "aws_caller_identity" "current" {}

data "aws_region" "current" {}

data "aws_partition" "current" {}

locals {
  function_name   = "${var.name}-${var.environment}-ingest"
  alias_name      = "live"
  upload_prefix   = "uploads/"
  rejected_prefix = "rejected/"
  in_vpc          = length(var.subnet_ids) > 0
  uses_dynamodb   = var.postgres_store == null
  account_id      = data.aws_caller_identity.current.account_id
  partition       = data.aws_partition.current.partition
  region          = data.aws_region.current.region

  # Empty: keep every version (an empty variable counts as unset).
  retention_environment = {
    LUDEX_HISTORY_KEEP_VERSIONS = var.history_retention.keep_versions == null ? "" : tostring(var.history_retention.keep_versions)
    LUDEX_HISTORY_KEEP_DAYS     = var.history_retention.keep_days == null ? "" : tostring(var.history_retention.keep_days)
  }

  store_environment = local.uses_dynamodb ? tomap({
    LUDEX_STORE = "dynamodb://${var.dynamodb_table_name}"
    }) : tomap({
    LUDEX_STORE                     = var.postgres_store.url
    LUDEX_STORE_PASSWORD_SECRET_ARN = var.postgres_store.password_secret_arn
  })
}

resource "aws_cloudwatch_log_group" "ingest" {
  #checkov:skip=CKV_AWS_338:Retention is a variable: prod keeps a year, dev keeps a few weeks to bound cost.
  name              = "/aws/lambda/${local.function_name}"
  retention_in_days = var.log_retention_in_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_sqs_queue" "dlq" {
  name                      = "${local.function_name}-dlq"
  message_retention_seconds = var.dlq_message_retention_seconds
  kms_master_key_id         = var.kms_key_arn
}

# --- Execution role --------------------------------------------------------------

data "aws_iam_policy_document" "assume_role" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "ingest" {
  name                 = "${local.function_name}-role"
  assume_role_policy   = data.aws_iam_policy_document.assume_role.json
  permissions_boundary = var.permissions_boundary_arn
}

# One statement per need, in one file that Terraform renders and that
# tests/infra/policy_templates.py renders the same way (so a test can hand the
# very policy to another IAM engine).
resource "aws_iam_role_policy" "ingest" {
  name = "${local.function_name}-access"
  role = aws_iam_role.ingest.id
  policy = jsonencode(jsondecode(templatefile("${path.module}/policy.json.tftpl", {
    uses_dynamodb          = local.uses_dynamodb
    dynamodb_table_arn     = var.dynamodb_table_arn
    password_secret_arn    = local.uses_dynamodb ? "" : var.postgres_store.password_secret_arn
    bucket_arn             = var.bucket_arn
    upload_prefix          = local.upload_prefix
    rejected_prefix        = local.rejected_prefix
    dlq_arn                = aws_sqs_queue.dlq.arn
    kms_key_arn            = var.kms_key_arn
    log_group_arn          = aws_cloudwatch_log_group.ingest.arn
    in_vpc                 = local.in_vpc
    network_interfaces_arn = "arn:${local.partition}:ec2:${local.region}:${local.account_id}:network-interface/*"
    subnet_arns            = [for id in var.subnet_ids : "arn:${local.partition}:ec2:${local.region}:${local.account_id}:subnet/${id}"]
    security_group_arns    = [for id in var.security_group_ids : "arn:${local.partition}:ec2:${local.region}:${local.account_id}:security-group/${id}"]
  })))
}

# --- Function, version, alias ----------------------------------------------------

resource "aws_lambda_function" "ingest" {
  #checkov:skip=CKV_AWS_116:Failed asynchronous events go to the SQS queue through an on-failure destination (aws_lambda_function_event_invoke_config), which also records the error.
  #checkov:skip=CKV_AWS_117:VPC attachment is optional (enable_vpc): with DynamoDB and S3 the function needs no private network.
  #checkov:skip=CKV_AWS_272:Code signing is not set up; the ZIP is built and uploaded by the CI workflow that holds the only deploy role.
  function_name                  = local.function_name
  description                    = "Ingests JSON/NDJSON uploads from s3://${var.bucket_name}/${local.upload_prefix}"
  role                           = aws_iam_role.ingest.arn
  filename                       = var.package_path
  source_code_hash               = filebase64sha256(var.package_path)
  runtime                        = "provided.al2023"
  handler                        = "bootstrap"
  architectures                  = ["arm64"]
  memory_size                    = var.memory_size
  timeout                        = var.timeout
  reserved_concurrent_executions = var.reserved_concurrent_executions
  kms_key_arn                    = var.kms_key_arn
  publish                        = true

  environment {
    variables = merge(local.store_environment, local.retention_environment, {
      LUDEX_BUCKET        = "s3://${var.bucket_name}"
      LUDEX_UPLOAD_PREFIX = local.upload_prefix
      LUDEX_LOG_FORMAT    = "json"
      RUST_LOG            = var.rust_log
    })
  }

  tracing_config {
    mode = "Active"
  }

  dynamic "vpc_config" {
    for_each = local.in_vpc ? [1] : []

    content {
      subnet_ids         = var.subnet_ids
      security_group_ids = var.security_group_ids
    }
  }

  # Code releases are published by CI and shifted by CodeDeploy; Terraform
  # uploads only the first package.
  lifecycle {
    ignore_changes = [filename, source_code_hash]
  }

  depends_on = [aws_cloudwatch_log_group.ingest, aws_iam_role_policy.ingest]
}

resource "aws_lambda_alias" "live" {
  name             = local.alias_name
  description      = "Version that receives S3 events; moved by CodeDeploy canary deployments."
  function_name    = aws_lambda_function.ingest.function_name
  function_version = aws_lambda_function.ingest.version

  lifecycle {
    ignore_changes = [function_version, routing_config]
  }
}

resource "aws_lambda_function_event_invoke_config" "live" {
  function_name                = aws_lambda_function.ingest.function_name
  qualifier                    = aws_lambda_alias.live.name
  maximum_retry_attempts       = var.maximum_retry_attempts
  maximum_event_age_in_seconds = var.maximum_event_age_in_seconds

  destination_config {
    on_failure {
      destination = aws_sqs_queue.dlq.arn
    }
  }
}

# --- S3 trigger --------------------------------------------------------------------
# One notification entry per suffix under uploads/. The suffixes do not overlap
# (".ndjson" does not end in ".json"; ".json.gz" ends in ".gz"), which S3 requires.

resource "aws_lambda_permission" "s3_invoke" {
  statement_id   = "AllowCatalogBucketInvoke"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.ingest.function_name
  qualifier      = aws_lambda_alias.live.name
  principal      = "s3.amazonaws.com"
  source_arn     = var.bucket_arn
  source_account = local.account_id
}

resource "aws_s3_bucket_notification" "uploads" {
  bucket = var.bucket_name

  lambda_function {
    id                  = "ingest-json"
    lambda_function_arn = aws_lambda_alias.live.arn
    events              = ["s3:ObjectCreated:*"]
    filter_prefix       = local.upload_prefix
    filter_suffix       = ".json"
  }

  lambda_function {
    id                  = "ingest-ndjson"
    lambda_function_arn = aws_lambda_alias.live.arn
    events              = ["s3:ObjectCreated:*"]
    filter_prefix       = local.upload_prefix
    filter_suffix       = ".ndjson"
  }

  lambda_function {
    id                  = "ingest-json-gz"
    lambda_function_arn = aws_lambda_alias.live.arn
    events              = ["s3:ObjectCreated:*"]
    filter_prefix       = local.upload_prefix
    filter_suffix       = ".json.gz"
  }

  lambda_function {
    id                  = "ingest-jsonl"
    lambda_function_arn = aws_lambda_alias.live.arn
    events              = ["s3:ObjectCreated:*"]
    filter_prefix       = local.upload_prefix
    filter_suffix       = ".jsonl"
  }

  lambda_function {
    id                  = "ingest-ndjson-gz"
    lambda_function_arn = aws_lambda_alias.live.arn
    events              = ["s3:ObjectCreated:*"]
    filter_prefix       = local.upload_prefix
    filter_suffix       = ".ndjson.gz"
  }

  lambda_function {
    id                  = "ingest-csv"
    lambda_function_arn = aws_lambda_alias.live.arn
    events              = ["s3:ObjectCreated:*"]
    filter_prefix       = local.upload_prefix
    filter_suffix       = ".csv"
  }

  lambda_function {
    id                  = "ingest-csv-gz"
    lambda_function_arn = aws_lambda_alias.live.arn
    events              = ["s3:ObjectCreated:*"]
    filter_prefix       = local.upload_prefix
    filter_suffix       = ".csv.gz"
  }

  depends_on = [aws_lambda_permission.s3_invoke]
}
