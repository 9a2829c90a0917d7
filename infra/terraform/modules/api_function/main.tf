# The HTTP API function: a container image from its own ECR repository,
# published versions behind the `live` alias (shifted by CodeDeploy), and the
# SSM parameter that holds the API key hashes.

data "aws_caller_identity" "current" {}

data "aws_region" "current" {}

data "aws_partition" "current" {}

locals {
  function_name   = "${var.name}-${var.environment}-api"
  alias_name      = "live"
  upload_prefix   = "uploads/"
  rejected_prefix = "rejected/"
  covers_prefix   = "covers/"
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

# --- Image repository --------------------------------------------------------------

resource "aws_ecr_repository" "api" {
  name                 = local.function_name
  image_tag_mutability = "IMMUTABLE"
  force_delete         = var.force_delete

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = var.kms_key_arn
  }
}

resource "aws_ecr_lifecycle_policy" "api" {
  repository = aws_ecr_repository.api.name

  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the last ${var.ecr_keep_image_count} images"
      selection = {
        tagStatus   = "any"
        countType   = "imageCountMoreThan"
        countNumber = var.ecr_keep_image_count
      }
      action = { type = "expire" }
    }]
  })
}

# Lets the Lambda service pull images for this function only.
data "aws_iam_policy_document" "ecr_lambda_pull" {
  statement {
    sid     = "LambdaPullForApiFunction"
    actions = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }

    condition {
      test     = "StringLike"
      variable = "aws:sourceArn"
      values   = ["arn:${local.partition}:lambda:${local.region}:${local.account_id}:function:${local.function_name}*"]
    }
  }
}

resource "aws_ecr_repository_policy" "api" {
  repository = aws_ecr_repository.api.name
  policy     = data.aws_iam_policy_document.ecr_lambda_pull.json
}

# --- API keys parameter ------------------------------------------------------------

resource "aws_ssm_parameter" "api_keys" {
  name        = "/${var.name}/${var.environment}/api-keys"
  description = "Hashes of the API keys the ${local.function_name} function accepts (written by an operator, see docs/deploy.md)"
  type        = "SecureString"
  key_id      = var.kms_key_arn
  # Placeholder: no key is accepted until an operator stores real hashes.
  value = "[]"

  lifecycle {
    ignore_changes = [value]
  }
}

# --- Session secret -------------------------------------------------------------

# Web UI sessions are sealed with this secret, so that every instance of the function reads
# the sessions any of them opened (docs/ui.md). Secrets Manager draws it and it is written
# write-only: it is in no plan and no state. Raising session_secret_version draws a new one,
# which signs every user out.
ephemeral "aws_secretsmanager_random_password" "session_secret" {
  password_length     = 64
  exclude_punctuation = true
}

resource "aws_ssm_parameter" "session_secret" {
  name             = "/${var.name}/${var.environment}/session-secret"
  description      = "The secret that seals the web UI sessions of the ${local.function_name} function"
  type             = "SecureString"
  key_id           = var.kms_key_arn
  value_wo         = ephemeral.aws_secretsmanager_random_password.session_secret.random_password
  value_wo_version = var.session_secret_version
}

resource "aws_cloudwatch_log_group" "api" {
  #checkov:skip=CKV_AWS_338:Retention is a variable: prod keeps a year, dev keeps a few weeks to bound cost.
  name              = "/aws/lambda/${local.function_name}"
  retention_in_days = var.log_retention_in_days
  kms_key_id        = var.kms_key_arn
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

resource "aws_iam_role" "api" {
  name                 = "${local.function_name}-role"
  assume_role_policy   = data.aws_iam_policy_document.assume_role.json
  permissions_boundary = var.permissions_boundary_arn
}

# One statement per need, in one file that Terraform renders and that
# tests/infra/policy_templates.py renders the same way (so a test can hand the
# very policy to another IAM engine).
resource "aws_iam_role_policy" "api" {
  name = "${local.function_name}-access"
  role = aws_iam_role.api.id
  policy = jsonencode(jsondecode(templatefile("${path.module}/policy.json.tftpl", {
    uses_dynamodb          = local.uses_dynamodb
    dynamodb_table_arn     = var.dynamodb_table_arn
    password_secret_arn    = local.uses_dynamodb ? "" : var.postgres_store.password_secret_arn
    bucket_arn             = var.bucket_arn
    upload_prefix          = local.upload_prefix
    rejected_prefix        = local.rejected_prefix
    covers_prefix          = local.covers_prefix
    api_keys_parameter_arn       = aws_ssm_parameter.api_keys.arn
    session_secret_parameter_arn = aws_ssm_parameter.session_secret.arn
    kms_key_arn                  = var.kms_key_arn
    log_group_arn          = aws_cloudwatch_log_group.api.arn
    in_vpc                 = local.in_vpc
    network_interfaces_arn = "arn:${local.partition}:ec2:${local.region}:${local.account_id}:network-interface/*"
    subnet_arns            = [for id in var.subnet_ids : "arn:${local.partition}:ec2:${local.region}:${local.account_id}:subnet/${id}"]
    security_group_arns    = [for id in var.security_group_ids : "arn:${local.partition}:ec2:${local.region}:${local.account_id}:security-group/${id}"]
  })))
}

# --- Function, version, alias ----------------------------------------------------

resource "aws_lambda_function" "api" {
  #checkov:skip=CKV_AWS_116:API Gateway invokes the function synchronously; a dead-letter queue only applies to asynchronous invocations.
  #checkov:skip=CKV_AWS_117:VPC attachment is optional (enable_vpc): with DynamoDB and S3 the function needs no private network.
  #checkov:skip=CKV_AWS_272:Lambda code signing applies to ZIP packages only; the image is pinned by digest in an IMMUTABLE, scanned ECR repository.
  function_name                  = local.function_name
  description                    = "ludex HTTP API (REST, web UI, OpenAPI) behind API Gateway"
  role                           = aws_iam_role.api.arn
  package_type                   = "Image"
  image_uri                      = var.image_uri
  architectures                  = ["arm64"]
  memory_size                    = var.memory_size
  timeout                        = var.timeout
  reserved_concurrent_executions = var.reserved_concurrent_executions
  kms_key_arn                    = var.kms_key_arn
  publish                        = true

  environment {
    variables = merge(local.store_environment, local.retention_environment, {
      LUDEX_BUCKET                         = "s3://${var.bucket_name}"
      LUDEX_UPLOAD_PREFIX                  = local.upload_prefix
      LUDEX_API_KEYS_PARAMETER             = aws_ssm_parameter.api_keys.name
      LUDEX_SESSION_SECRET_PARAMETER       = aws_ssm_parameter.session_secret.name
      LUDEX_READS_REQUIRE_KEY              = tostring(var.reads_require_key)
      LUDEX_CORS_ORIGINS                   = join(",", var.cors_allowed_origins)
      LUDEX_LOG_FORMAT                     = "json"
      RUST_LOG                             = var.rust_log
      AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH = "true"
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
  # sets only the first image.
  lifecycle {
    ignore_changes = [image_uri]
  }

  depends_on = [aws_cloudwatch_log_group.api, aws_iam_role_policy.api]
}

resource "aws_lambda_alias" "live" {
  name             = local.alias_name
  description      = "Version that serves API Gateway; moved by CodeDeploy canary deployments."
  function_name    = aws_lambda_function.api.function_name
  function_version = aws_lambda_function.api.version

  lifecycle {
    ignore_changes = [function_version, routing_config]
  }
}
