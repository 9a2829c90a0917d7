# CodeDeploy shifts each function's `live` alias from the running version to a
# newly published one (canary by default), after the BeforeAllowTraffic hook
# has smoke-tested the new version, and rolls back when a deployment fails or
# one of the release alarms (each scoped to the new version) fires.

data "aws_partition" "current" {}

locals {
  prefix = "${var.name}-${var.environment}"

  deployment_groups = {
    api    = var.api_alarm_names
    ingest = var.ingest_alarm_names
  }
}

data "aws_iam_policy_document" "codedeploy_assume_role" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["codedeploy.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "codedeploy" {
  name                 = "${local.prefix}-codedeploy"
  assume_role_policy   = data.aws_iam_policy_document.codedeploy_assume_role.json
  permissions_boundary = var.permissions_boundary_arn
}

# The "Limited" managed policy covers alias updates, alarm reads and SNS
# notifications without the S3 read access of AWSCodeDeployRoleForLambda:
# revisions are passed inline (AppSpecContent), never from a bucket.
resource "aws_iam_role_policy_attachment" "codedeploy" {
  role       = aws_iam_role.codedeploy.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AWSCodeDeployRoleForLambdaLimited"
}

# The managed policy may invoke only hooks named CodeDeployHook_*; this one is named by the environment.
data "aws_iam_policy_document" "codedeploy_hook" {
  statement {
    sid       = "InvokeTheBeforeAllowTrafficHook"
    actions   = ["lambda:InvokeFunction"]
    resources = [var.hook_function_arn]
  }
}

resource "aws_iam_role_policy" "codedeploy_hook" {
  name   = "${local.prefix}-codedeploy-hook"
  role   = aws_iam_role.codedeploy.id
  policy = data.aws_iam_policy_document.codedeploy_hook.json
}

resource "aws_codedeploy_app" "functions" {
  name             = local.prefix
  compute_platform = "Lambda"
}

resource "aws_codedeploy_deployment_group" "function" {
  for_each = local.deployment_groups

  app_name               = aws_codedeploy_app.functions.name
  deployment_group_name  = "${local.prefix}-${each.key}"
  service_role_arn       = aws_iam_role.codedeploy.arn
  deployment_config_name = var.deployment_config_name

  deployment_style {
    deployment_type   = "BLUE_GREEN"
    deployment_option = "WITH_TRAFFIC_CONTROL"
  }

  alarm_configuration {
    enabled = true
    alarms  = each.value
  }

  auto_rollback_configuration {
    enabled = true
    events  = ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"]
  }
}
