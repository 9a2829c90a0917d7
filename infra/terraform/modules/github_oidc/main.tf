# Keyless code releases: GitHub Actions exchanges its OIDC token for
# short-lived credentials of the deploy role, trusted only for one repository
# and the GitHub environment named like this one. The role pushes the API
# image, publishes function versions, starts CodeDeploy deployments and reads
# Terraform outputs from state. It carries the environment's permissions
# boundary like every role the apply role creates.
#
# The account's OIDC provider, the apply and plan roles and the boundary are
# created once by an administrator (infra/terraform/bootstrap); this module
# only looks the provider up.

data "aws_caller_identity" "current" {}

data "aws_region" "current" {}

data "aws_partition" "current" {}

locals {
  prefix     = "${var.name}-${var.environment}"
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.region
  arn_tail   = "${local.region}:${local.account_id}"

  oidc_host         = "token.actions.githubusercontent.com"
  oidc_provider_arn = data.aws_iam_openid_connect_provider.github.arn

  deploy_subjects = concat(
    [for branch in var.deploy_branches : "repo:${var.github_repository}:ref:refs/heads/${branch}"],
    [for environment in var.deploy_environments : "repo:${var.github_repository}:environment:${environment}"],
  )

  state_access = var.state_bucket_arn != null && var.state_key != null && var.state_kms_key_arn != null
}

data "aws_iam_openid_connect_provider" "github" {
  url = "https://${local.oidc_host}"
}

# --- Deploy role ------------------------------------------------------------------------

data "aws_iam_policy_document" "deploy_trust" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [local.oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_host}:aud"
      values   = ["sts.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_host}:sub"
      values   = local.deploy_subjects
    }
  }
}

resource "aws_iam_role" "deploy" {
  name                 = "${local.prefix}-github-deploy"
  description          = "Assumed by GitHub Actions in ${var.github_repository} to ship code to ${local.prefix}"
  assume_role_policy   = data.aws_iam_policy_document.deploy_trust.json
  permissions_boundary = var.permissions_boundary_arn
}

data "aws_iam_policy_document" "deploy" {
  # GetAuthorizationToken has no resource-level permissions: AWS requires Resource "*".
  statement {
    sid       = "LogInToEcr"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid = "PushApiImage"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:CompleteLayerUpload",
      "ecr:DescribeImages",
      "ecr:DescribeImageScanFindings",
      "ecr:GetDownloadUrlForLayer",
      "ecr:InitiateLayerUpload",
      "ecr:PutImage",
      "ecr:UploadLayerPart",
    ]
    resources = [var.ecr_repository_arn]
  }

  statement {
    sid = "PublishFunctionVersions"
    actions = [
      "lambda:GetAlias",
      "lambda:GetFunction",
      "lambda:GetFunctionConfiguration",
      "lambda:ListVersionsByFunction",
      "lambda:PublishVersion",
      "lambda:UpdateAlias",
      "lambda:UpdateFunctionCode",
    ]
    resources = [
      var.api_function_arn,
      "${var.api_function_arn}:*",
      var.ingest_function_arn,
      "${var.ingest_function_arn}:*",
    ]
  }

  statement {
    sid     = "StartDeployments"
    actions = ["codedeploy:CreateDeployment", "codedeploy:GetDeployment", "codedeploy:StopDeployment"]
    resources = [
      for group in var.codedeploy_deployment_group_names :
      "arn:${local.partition}:codedeploy:${local.arn_tail}:deploymentgroup:${var.codedeploy_app_name}/${group}"
    ]
  }

  statement {
    sid       = "RegisterRevisions"
    actions   = ["codedeploy:GetApplication", "codedeploy:GetApplicationRevision", "codedeploy:RegisterApplicationRevision"]
    resources = ["arn:${local.partition}:codedeploy:${local.arn_tail}:application:${var.codedeploy_app_name}"]
  }

  statement {
    sid       = "ReadDeploymentConfig"
    actions   = ["codedeploy:GetDeploymentConfig"]
    resources = ["arn:${local.partition}:codedeploy:${local.arn_tail}:deploymentconfig:${var.codedeploy_deployment_config_name}"]
  }

  dynamic "statement" {
    for_each = local.state_access ? [1] : []

    content {
      sid       = "ListStateObject"
      actions   = ["s3:ListBucket"]
      resources = [var.state_bucket_arn]

      condition {
        test     = "StringEquals"
        variable = "s3:prefix"
        values   = [var.state_key]
      }
    }
  }

  dynamic "statement" {
    for_each = local.state_access ? [1] : []

    content {
      sid       = "ReadTerraformOutputs"
      actions   = ["s3:GetObject"]
      resources = ["${var.state_bucket_arn}/${var.state_key}"]
    }
  }

  dynamic "statement" {
    for_each = local.state_access ? [1] : []

    content {
      sid       = "DecryptState"
      actions   = ["kms:Decrypt"]
      resources = [var.state_kms_key_arn]
    }
  }
}

resource "aws_iam_role_policy" "deploy" {
  name   = "${local.prefix}-github-deploy-access"
  role   = aws_iam_role.deploy.id
  policy = data.aws_iam_policy_document.deploy.json
}
