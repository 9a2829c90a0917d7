# Keyless CI/CD: GitHub Actions exchanges its OIDC token for short-lived
# credentials of one of two roles, each trusted only for one repository.
#  - deploy role: pushes the API image, publishes function versions and starts
#    CodeDeploy deployments; reads Terraform outputs from state.
#  - Terraform apply role (optional): creates and changes the stack. It needs
#    far broader rights, so it is trusted only from protected GitHub
#    environments and every grant is scoped to this environment's name prefix
#    wherever the service allows it.

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
  oidc_provider_arn = var.create_oidc_provider ? aws_iam_openid_connect_provider.github[0].arn : var.oidc_provider_arn

  deploy_subjects = concat(
    [for branch in var.deploy_branches : "repo:${var.github_repository}:ref:refs/heads/${branch}"],
    [for environment in var.deploy_environments : "repo:${var.github_repository}:environment:${environment}"],
  )
  terraform_subjects = [for environment in var.terraform_environments : "repo:${var.github_repository}:environment:${environment}"]
  create_apply_role  = length(var.terraform_environments) > 0

  state_access  = var.state_bucket_arn != null && var.state_key != null && var.state_kms_key_arn != null
  state_objects = local.state_access ? ["${var.state_bucket_arn}/${var.state_key}", "${var.state_bucket_arn}/${var.state_key}.tflock"] : []
}

resource "aws_iam_openid_connect_provider" "github" {
  count = var.create_oidc_provider ? 1 : 0

  url            = "https://${local.oidc_host}"
  client_id_list = ["sts.amazonaws.com"]
  # AWS validates GitHub's certificate through its own trust store; the
  # thumbprints are kept because older providers require the argument.
  thumbprint_list = [
    "6938fd4d98bab03faadb97b34396831e3780aea1",
    "1c58a3a8518e8759bf075b76b750d4f2df264fcd",
  ]
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
  name               = "${local.prefix}-github-deploy"
  description        = "Assumed by GitHub Actions in ${var.github_repository} to ship code to ${local.prefix}"
  assume_role_policy = data.aws_iam_policy_document.deploy_trust.json
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

# --- Terraform apply role -----------------------------------------------------------------

data "aws_iam_policy_document" "terraform_trust" {
  count = local.create_apply_role ? 1 : 0

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
      values   = local.terraform_subjects
    }
  }
}

resource "aws_iam_role" "terraform" {
  count = local.create_apply_role ? 1 : 0

  name               = "${local.prefix}-github-terraform"
  description        = "Assumed by reviewed GitHub environments in ${var.github_repository} to apply infra/terraform/envs/${var.environment}"
  assume_role_policy = data.aws_iam_policy_document.terraform_trust[0].json
}

data "aws_iam_policy_document" "terraform" {
  #checkov:skip=CKV_AWS_107:The apply role manages the stack's own IAM roles, scoped to the environment prefix.
  #checkov:skip=CKV_AWS_108:The apply role reads the stack's own data stores, scoped to the environment prefix.
  #checkov:skip=CKV_AWS_109:The apply role writes the policies of the stack's own roles and keys, scoped to the environment prefix or tags.
  #checkov:skip=CKV_AWS_110:Changing the stack's roles is what an apply does; the role is limited to reviewed GitHub environments and prefixed role names.
  #checkov:skip=CKV_AWS_111:Write access is scoped to the environment prefix; the few calls AWS does not scope are listed in the UnscopedCalls statement.
  #checkov:skip=CKV_AWS_356:Only calls without resource-level permissions (create-key, describe) use Resource "*".
  #checkov:skip=CKV2_AWS_40:No iam:* grant; IAM actions are limited to roles and policies with the environment prefix.
  count = local.create_apply_role ? 1 : 0

  dynamic "statement" {
    for_each = local.state_access ? [1] : []

    content {
      sid       = "ListStateObjects"
      actions   = ["s3:ListBucket"]
      resources = [var.state_bucket_arn]
    }
  }

  dynamic "statement" {
    for_each = local.state_access ? [1] : []

    content {
      sid       = "ReadWriteStateAndLock"
      actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
      resources = local.state_objects
    }
  }

  dynamic "statement" {
    for_each = local.state_access ? [1] : []

    content {
      sid       = "EncryptState"
      actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
      resources = [var.state_kms_key_arn]
    }
  }

  # Calls without resource-level permissions: AWS requires Resource "*".
  statement {
    sid = "UnscopedCalls"
    actions = [
      "ec2:DescribeAvailabilityZones",
      "kms:CreateKey",
      "kms:ListAliases",
      "logs:DescribeLogGroups",
    ]
    resources = ["*"]
  }

  statement {
    sid = "ManagePrefixedResources"
    actions = [
      "apigateway:*",
      "cloudwatch:*",
      "codedeploy:*",
      "dynamodb:*",
      "ecr:*",
      "firehose:*",
      "lambda:*",
      "logs:*",
      "s3:*",
      "sns:*",
      "sqs:*",
      "ssm:*",
    ]
    resources = [
      "arn:${local.partition}:apigateway:${local.region}::/apis",
      "arn:${local.partition}:apigateway:${local.region}::/apis/*",
      "arn:${local.partition}:apigateway:${local.region}::/domainnames",
      "arn:${local.partition}:apigateway:${local.region}::/domainnames/*",
      "arn:${local.partition}:apigateway:${local.region}::/tags/*",
      "arn:${local.partition}:cloudwatch::${local.account_id}:dashboard/${local.prefix}",
      "arn:${local.partition}:cloudwatch:${local.arn_tail}:alarm:${local.prefix}-*",
      "arn:${local.partition}:codedeploy:${local.arn_tail}:application:${local.prefix}",
      "arn:${local.partition}:codedeploy:${local.arn_tail}:deploymentgroup:${local.prefix}/*",
      "arn:${local.partition}:codedeploy:${local.arn_tail}:deploymentconfig:*",
      "arn:${local.partition}:dynamodb:${local.arn_tail}:table/${local.prefix}-*",
      "arn:${local.partition}:ecr:${local.arn_tail}:repository/${local.prefix}-*",
      "arn:${local.partition}:firehose:${local.arn_tail}:deliverystream/${local.prefix}-*",
      "arn:${local.partition}:lambda:${local.arn_tail}:function:${local.prefix}-*",
      "arn:${local.partition}:logs:${local.arn_tail}:log-group:/aws/lambda/${local.prefix}-*",
      "arn:${local.partition}:logs:${local.arn_tail}:log-group:/aws/apigateway/${local.prefix}-*",
      "arn:${local.partition}:logs:${local.arn_tail}:log-group:/aws/kinesisfirehose/${local.prefix}-*",
      "arn:${local.partition}:logs:${local.arn_tail}:log-group:/aws/vpc/${local.prefix}-*",
      "arn:${local.partition}:logs:${local.arn_tail}:log-group:/aws/rds/instance/${local.prefix}/*",
      "arn:${local.partition}:s3:::${local.prefix}-*",
      "arn:${local.partition}:sns:${local.arn_tail}:${local.prefix}-*",
      "arn:${local.partition}:sqs:${local.arn_tail}:${local.prefix}-*",
      "arn:${local.partition}:ssm:${local.arn_tail}:parameter/${var.name}/${var.environment}/*",
    ]
  }

  statement {
    sid = "ManagePrefixedRoles"
    actions = [
      "iam:AttachRolePolicy",
      "iam:CreateRole",
      "iam:DeleteRole",
      "iam:DeleteRolePolicy",
      "iam:DetachRolePolicy",
      "iam:GetRole",
      "iam:GetRolePolicy",
      "iam:ListAttachedRolePolicies",
      "iam:ListInstanceProfilesForRole",
      "iam:ListRolePolicies",
      "iam:PassRole",
      "iam:PutRolePolicy",
      "iam:TagRole",
      "iam:UntagRole",
      "iam:UpdateAssumeRolePolicy",
      "iam:UpdateRole",
    ]
    resources = ["arn:${local.partition}:iam::${local.account_id}:role/${local.prefix}-*"]
  }

  statement {
    sid       = "ReadAwsManagedPolicies"
    actions   = ["iam:GetPolicy", "iam:GetPolicyVersion"]
    resources = ["arn:${local.partition}:iam::aws:policy/*"]
  }

  statement {
    sid = "ManageGithubOidcProvider"
    actions = [
      "iam:CreateOpenIDConnectProvider",
      "iam:DeleteOpenIDConnectProvider",
      "iam:GetOpenIDConnectProvider",
      "iam:TagOpenIDConnectProvider",
      "iam:UpdateOpenIDConnectProviderThumbprint",
    ]
    resources = ["arn:${local.partition}:iam::${local.account_id}:oidc-provider/${local.oidc_host}"]
  }

  statement {
    sid       = "ManagePrefixedKeyAliases"
    actions   = ["kms:CreateAlias", "kms:DeleteAlias", "kms:UpdateAlias"]
    resources = ["arn:${local.partition}:kms:${local.arn_tail}:alias/${local.prefix}-*"]
  }

  statement {
    sid       = "ManageTaggedKeys"
    actions   = ["kms:*"]
    resources = ["arn:${local.partition}:kms:${local.arn_tail}:key/*"]

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/Environment"
      values   = [var.environment]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/Project"
      values   = [var.name]
    }
  }

  dynamic "statement" {
    for_each = var.manage_network ? [1] : []

    content {
      # VPC resources get generated IDs, so they are scoped to this account and region.
      sid       = "ManageNetwork"
      actions   = ["ec2:*"]
      resources = ["arn:${local.partition}:ec2:${local.arn_tail}:*"]
    }
  }

  dynamic "statement" {
    for_each = var.manage_network ? [1] : []

    content {
      # EC2 describe calls have no resource-level permissions: AWS requires Resource "*".
      sid       = "DescribeNetwork"
      actions   = ["ec2:Describe*"]
      resources = ["*"]
    }
  }

  dynamic "statement" {
    for_each = var.manage_network ? [1] : []

    content {
      sid     = "ManageDatabase"
      actions = ["rds:*"]
      resources = [
        "arn:${local.partition}:rds:${local.arn_tail}:db:${local.prefix}",
        "arn:${local.partition}:rds:${local.arn_tail}:subgrp:${local.prefix}",
        "arn:${local.partition}:rds:${local.arn_tail}:pg:${local.prefix}-*",
        "arn:${local.partition}:rds:${local.arn_tail}:snapshot:${local.prefix}-*",
      ]
    }
  }

  dynamic "statement" {
    for_each = var.manage_network ? [1] : []

    content {
      # RDS creates the master password secret with the caller's rights.
      sid       = "ManageRdsMasterSecret"
      actions   = ["secretsmanager:*"]
      resources = ["arn:${local.partition}:secretsmanager:${local.arn_tail}:secret:rds!*"]
    }
  }
}

resource "aws_iam_role_policy" "terraform" {
  count = local.create_apply_role ? 1 : 0

  name   = "${local.prefix}-github-terraform-access"
  role   = aws_iam_role.terraform[0].id
  policy = data.aws_iam_policy_document.terraform[0].json
}
