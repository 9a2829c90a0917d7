# The BeforeAllowTraffic hook of both deployment groups: a small Python
# function (src/release_hook.py) that CodeDeploy calls after publishing a new
# version and before shifting any traffic to it. It points the release alarms
# at the new version, smoke-tests that version by invoking it directly (API: a
# read and a write round trip on a canary record; ingest: a one-line file),
# and reports the result to CodeDeploy. The canary script's smoke test after
# the shift stays.

data "aws_caller_identity" "current" {}

data "aws_region" "current" {}

data "aws_partition" "current" {}

locals {
  prefix        = "${var.name}-${var.environment}"
  function_name = "${local.prefix}-release-hook"
  canary_prefix = "uploads/canary/"
  account_id    = data.aws_caller_identity.current.account_id
  partition     = data.aws_partition.current.partition
  arn_tail      = "${data.aws_region.current.region}:${local.account_id}"
}

data "archive_file" "hook" {
  type        = "zip"
  source_file = "${path.module}/src/release_hook.py"
  output_path = "${path.module}/.build/release_hook.zip"
}

resource "aws_cloudwatch_log_group" "hook" {
  #checkov:skip=CKV_AWS_338:Retention is a variable: prod keeps a year, dev keeps a few weeks to bound cost.
  name              = "/aws/lambda/${local.function_name}"
  retention_in_days = var.log_retention_in_days
  kms_key_id        = var.kms_key_arn
}

# The plaintext API key the hook's write round trip uses: an operator stores a
# write-scoped key named "release-canary" here (docs/deploy.md); Terraform only
# creates the parameter and never reads its value afterwards.
resource "aws_ssm_parameter" "canary_api_key" {
  name        = "/${var.name}/${var.environment}/canary-api-key"
  description = "API key (plaintext) of the release hook's write round trip against ${local.prefix}"
  type        = "SecureString"
  key_id      = var.kms_key_arn
  value       = "unset"

  lifecycle {
    ignore_changes = [value]
  }
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

resource "aws_iam_role" "hook" {
  name                 = "${local.function_name}-role"
  assume_role_policy   = data.aws_iam_policy_document.assume_role.json
  permissions_boundary = var.permissions_boundary_arn
}

# One statement per need; tests/infra/policy_templates.py renders the same file.
resource "aws_iam_role_policy" "hook" {
  name = "${local.function_name}-access"
  role = aws_iam_role.hook.id
  policy = jsonencode(jsondecode(templatefile("${path.module}/policy.json.tftpl", {
    deployment_groups_arn    = "arn:${local.partition}:codedeploy:${local.arn_tail}:deploymentgroup:${local.prefix}/*"
    application_arn          = "arn:${local.partition}:codedeploy:${local.arn_tail}:application:${local.prefix}"
    api_function_arn         = var.api_function_arn
    ingest_function_arn      = var.ingest_function_arn
    release_alarms_arn       = "arn:${local.partition}:cloudwatch:${local.arn_tail}:alarm:${local.prefix}-*-release-*"
    canary_objects_arn       = "${var.bucket_arn}/${local.canary_prefix}*"
    canary_key_parameter_arn = aws_ssm_parameter.canary_api_key.arn
    kms_key_arn              = var.kms_key_arn
    log_group_arn            = aws_cloudwatch_log_group.hook.arn
  })))
}

# --- Function ---------------------------------------------------------------------

resource "aws_lambda_function" "hook" {
  #checkov:skip=CKV_AWS_116:CodeDeploy waits for the hook's status report; an invocation that fails reports nothing and the deployment fails at the hook timeout, so a dead-letter queue would add nothing.
  #checkov:skip=CKV_AWS_117:The hook calls only AWS APIs (CodeDeploy, Lambda, CloudWatch, S3, SSM); it needs no private network.
  #checkov:skip=CKV_AWS_272:The package is built by Terraform from src/ in this repository (archive_file), not uploaded by anyone.
  function_name                  = local.function_name
  description                    = "BeforeAllowTraffic check of ${local.prefix} releases: smoke-tests the new version before any traffic shifts"
  role                           = aws_iam_role.hook.arn
  filename                       = data.archive_file.hook.output_path
  source_code_hash               = data.archive_file.hook.output_base64sha256
  runtime                        = "python3.13"
  handler                        = "release_hook.handler"
  architectures                  = ["arm64"]
  memory_size                    = 256
  timeout                        = var.timeout
  reserved_concurrent_executions = 2 # one deployment per function at a time
  kms_key_arn                    = var.kms_key_arn

  environment {
    variables = {
      API_FUNCTION_NAME    = var.api_function_name
      INGEST_FUNCTION_NAME = var.ingest_function_name
      RELEASE_ALARMS       = jsonencode(var.release_alarm_names)
      BUCKET               = var.bucket_name
      CANARY_PREFIX        = local.canary_prefix
      CANARY_KEY_PARAMETER = aws_ssm_parameter.canary_api_key.name
    }
  }

  tracing_config {
    mode = "Active"
  }

  depends_on = [aws_cloudwatch_log_group.hook, aws_iam_role_policy.hook]
}
