# The CI roles of one environment, created by an administrator in bootstrap
# (never by the roles themselves):
#  - permissions boundary: the most any role of the environment may do. It
#    grants no IAM at all, so a role under it cannot raise anyone's rights.
#  - apply role: assumed by the release workflow in the GitHub environment of
#    the same name; applies a reviewed, saved plan. It may create and change
#    roles only under the boundary, attach only two named AWS policies, and
#    never touch its own role, the plan role or the boundary.
#  - plan role: read-only; plans for pull requests and for the release
#    pipeline. It cannot read the service's data.
# The CI roles are named <name>-ci-<environment>-*, outside the environment's
# <name>-<environment>-* namespace that the apply role manages.

data "aws_caller_identity" "current" {}

data "aws_region" "current" {}

data "aws_partition" "current" {}

locals {
  prefix     = "${var.name}-${var.environment}"
  ci_prefix  = "${var.name}-ci-${var.environment}"
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.region
  arn_tail   = "${local.region}:${local.account_id}"
  oidc_host  = "token.actions.githubusercontent.com"

  state_key     = "${var.environment}/terraform.tfstate"
  state_objects = ["${var.state_bucket_arn}/${local.state_key}", "${var.state_bucket_arn}/${local.state_key}.tflock"]

  # The only AWS managed policies the environment's roles use.
  attachable_policy_arns = [
    "arn:${local.partition}:iam::aws:policy/service-role/AWSCodeDeployRoleForLambdaLimited",
    "arn:${local.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole",
  ]
  # Services the environment's roles are passed to.
  role_services = [
    "lambda.amazonaws.com",
    "codedeploy.amazonaws.com",
    "firehose.amazonaws.com",
    "logs.amazonaws.com",
    "vpc-flow-logs.amazonaws.com",
    "monitoring.rds.amazonaws.com",
  ]
  db_instance_arns = [
    "arn:${local.partition}:rds:${local.arn_tail}:db:${local.prefix}",
    "arn:${local.partition}:rds:${local.arn_tail}:db:${local.prefix}-replica-*",
  ]

  # ARNs of the environment's resources, by name prefix.
  prefixed_resources = [
    "arn:${local.partition}:cloudwatch::${local.account_id}:dashboard/${local.prefix}",
    "arn:${local.partition}:cloudwatch:${local.arn_tail}:alarm:${local.prefix}-*",
    "arn:${local.partition}:codedeploy:${local.arn_tail}:application:${local.prefix}",
    "arn:${local.partition}:codedeploy:${local.arn_tail}:deploymentgroup:${local.prefix}/*",
    "arn:${local.partition}:dynamodb:${local.arn_tail}:table/${local.prefix}-*",
    "arn:${local.partition}:ecr:${local.arn_tail}:repository/${local.prefix}-*",
    "arn:${local.partition}:firehose:${local.arn_tail}:deliverystream/${local.prefix}-*",
    "arn:${local.partition}:lambda:${local.arn_tail}:function:${local.prefix}-*",
    "arn:${local.partition}:logs:${local.arn_tail}:log-group:/aws/lambda/${local.prefix}-*",
    "arn:${local.partition}:logs:${local.arn_tail}:log-group:/aws/apigateway/${local.prefix}-*",
    "arn:${local.partition}:logs:${local.arn_tail}:log-group:/aws/kinesisfirehose/${local.prefix}-*",
    "arn:${local.partition}:logs:${local.arn_tail}:log-group:/aws/vpc/${local.prefix}-*",
    "arn:${local.partition}:logs:${local.arn_tail}:log-group:/aws/rds/instance/${local.prefix}/*",
    "arn:${local.partition}:logs:${local.arn_tail}:log-group:/aws/rds/instance/${local.prefix}-replica-*",
    "arn:${local.partition}:s3:::${local.prefix}-*",
    "arn:${local.partition}:sns:${local.arn_tail}:${local.prefix}-*",
    "arn:${local.partition}:sqs:${local.arn_tail}:${local.prefix}-*",
    "arn:${local.partition}:ssm:${local.arn_tail}:parameter/${var.name}/${var.environment}/*",
  ]

  # EC2 calls that create the optional network; each created resource carries the environment's tags.
  network_create_actions = [
    "ec2:AllocateAddress",
    "ec2:CreateFlowLogs",
    "ec2:CreateInternetGateway",
    "ec2:CreateNatGateway",
    "ec2:CreateRouteTable",
    "ec2:CreateSecurityGroup",
    "ec2:CreateSubnet",
    "ec2:CreateVpc",
    "ec2:CreateVpcEndpoint",
  ]
}

# --- Permissions boundary ----------------------------------------------------------------

data "aws_iam_policy_document" "boundary" {
  #checkov:skip=CKV_AWS_356:Only X-Ray writes, ECR login, alarm and network-interface descriptions use Resource "*"; AWS offers no resource-level permissions for them.
  #checkov:skip=CKV_AWS_111:A boundary is a ceiling, not a grant: each role's own policy grants the few calls it makes. Writes are limited to this environment's prefixed or tagged resources, plus function network interfaces (generated ids) and RDS's shared RDSOSMetrics log group.
  #checkov:skip=CKV_AWS_109:The boundary allows no IAM and no resource policy outside this environment's prefixed resources.
  #checkov:skip=CKV_AWS_108:A ceiling for the functions' roles, which read this environment's table, bucket and database secret, named by prefix or tag.
  statement {
    sid = "ServicesOfThisEnvironment"
    actions = [
      "cloudwatch:DescribeAlarms",
      "cloudwatch:PutMetricAlarm",
      "codedeploy:*",
      "dynamodb:*",
      "ecr:*",
      "firehose:*",
      "lambda:*",
      "logs:*",
      "s3:*",
      "sns:Publish",
      "sqs:*",
      "ssm:GetParameter",
      "ssm:GetParameters",
    ]
    resources = local.prefixed_resources
  }

  statement {
    sid       = "ReadDeploymentConfigs"
    actions   = ["codedeploy:GetDeploymentConfig"]
    resources = ["arn:${local.partition}:codedeploy:${local.arn_tail}:deploymentconfig:*"]
  }

  statement {
    sid       = "ReadThisEnvironmentsState"
    actions   = ["s3:ListBucket", "s3:GetObject"]
    resources = [var.state_bucket_arn, "${var.state_bucket_arn}/${local.state_key}"]
  }

  statement {
    sid       = "DecryptState"
    actions   = ["kms:Decrypt"]
    resources = [var.state_kms_key_arn]
  }

  statement {
    sid       = "UseKeysOfThisEnvironment"
    actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:GenerateDataKey*", "kms:DescribeKey"]
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

  statement {
    sid       = "ReadTheDatabasePassword"
    actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
    resources = ["arn:${local.partition}:secretsmanager:${local.arn_tail}:secret:rds!*"]

    condition {
      test     = "StringLike"
      variable = "aws:ResourceTag/aws:rds:primaryDBInstanceArn"
      values   = local.db_instance_arns
    }
  }

  statement {
    # RDS enhanced monitoring writes to the account's RDSOSMetrics log group.
    sid       = "RdsEnhancedMonitoring"
    actions   = ["logs:CreateLogGroup", "logs:PutRetentionPolicy", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams", "logs:GetLogEvents"]
    resources = ["arn:${local.partition}:logs:${local.arn_tail}:log-group:RDS*"]
  }

  statement {
    # Functions in a VPC manage their network interfaces (their ids are generated).
    sid = "FunctionNetworkInterfaces"
    actions = [
      "ec2:CreateNetworkInterface",
      "ec2:DeleteNetworkInterface",
      "ec2:AssignPrivateIpAddresses",
      "ec2:UnassignPrivateIpAddresses",
    ]
    resources = [
      "arn:${local.partition}:ec2:${local.arn_tail}:network-interface/*",
      "arn:${local.partition}:ec2:${local.arn_tail}:subnet/*",
      "arn:${local.partition}:ec2:${local.arn_tail}:security-group/*",
    ]
  }

  # Calls without resource-level permissions: AWS requires Resource "*".
  statement {
    sid = "CallsWithoutResourceScope"
    actions = [
      "ec2:DescribeNetworkInterfaces",
      "ecr:GetAuthorizationToken",
      "xray:PutTelemetryRecords",
      "xray:PutTraceSegments",
    ]
    resources = ["*"]
  }
}

resource "aws_iam_policy" "boundary" {
  name        = "${local.prefix}-boundary"
  description = "Permissions boundary of every role in ${local.prefix}: no IAM, only this environment's resources"
  policy      = data.aws_iam_policy_document.boundary.json
}

# --- Trust ---------------------------------------------------------------------------------

data "aws_iam_policy_document" "terraform_trust" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [var.oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_host}:aud"
      values   = ["sts.amazonaws.com"]
    }

    # The release job of this environment runs in the GitHub environment of the
    # same name (deployment branch main; required reviewers in prod).
    condition {
      test     = "StringEquals"
      variable = "${local.oidc_host}:sub"
      values   = ["repo:${var.github_repository}:environment:${var.environment}"]
    }
  }
}

data "aws_iam_policy_document" "plan_trust" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [var.oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_host}:aud"
      values   = ["sts.amazonaws.com"]
    }

    # Pull requests of this repository (forks get no token), and the release
    # pipeline's plan jobs, which run for the release branch outside any environment.
    condition {
      test     = "StringEquals"
      variable = "${local.oidc_host}:sub"
      values = [
        "repo:${var.github_repository}:pull_request",
        "repo:${var.github_repository}:ref:refs/heads/${var.release_branch}",
      ]
    }
  }
}

# --- Apply role ------------------------------------------------------------------------------

resource "aws_iam_role" "terraform" {
  name               = "${local.ci_prefix}-terraform"
  description        = "Applies reviewed plans of infra/terraform/envs/${var.environment} from ${var.github_repository}"
  assume_role_policy = data.aws_iam_policy_document.terraform_trust.json
}

data "aws_iam_policy_document" "terraform" {
  #checkov:skip=CKV_AWS_107:The role passes only this environment's roles (iam:PassRole on the environment prefix, to the services they serve).
  #checkov:skip=CKV_AWS_108:The apply role reads this environment's data stores to manage them; every grant is scoped to the environment by name prefix or tag.
  #checkov:skip=CKV_AWS_109:Policies are written only on this environment's prefixed roles and only under the permissions boundary; its own role and the boundary are denied.
  #checkov:skip=CKV_AWS_110:Role changes require the permissions boundary (iam:PermissionsBoundary) and attachments name two AWS policies (iam:PolicyARN); the boundary grants no IAM.
  #checkov:skip=CKV_AWS_111:Writes are scoped to the environment by name prefix or by the Environment tag; KMS CreateKey needs Resource "*" and is tag-conditioned.
  #checkov:skip=CKV_AWS_356:Resource "*" only for describe/list calls without resource-level permissions, tag-conditioned KMS key creation, and Deny statements.
  #checkov:skip=CKV2_AWS_40:No iam:* grant; IAM writes are limited to the environment's prefixed roles under the permissions boundary.
  statement {
    sid       = "ListStateObjects"
    actions   = ["s3:ListBucket"]
    resources = [var.state_bucket_arn]
  }

  statement {
    sid       = "ReadWriteStateAndLock"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = local.state_objects
  }

  statement {
    sid       = "EncryptState"
    actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
    resources = [var.state_kms_key_arn]
  }

  # Reads the provider makes without resource-level permissions: AWS requires Resource "*".
  statement {
    sid = "UnscopedReads"
    actions = [
      "ec2:DescribeAvailabilityZones",
      "ec2:Describe*",
      "iam:ListOpenIDConnectProviders",
      "kms:ListAliases",
      "logs:DescribeLogGroups",
      "ssm:DescribeParameters",
    ]
    resources = ["*"]
  }

  # The API function's session secret is drawn by Secrets Manager (an ephemeral resource);
  # GetRandomPassword has no resource to scope to.
  statement {
    sid       = "DrawRandomSecrets"
    actions   = ["secretsmanager:GetRandomPassword"]
    resources = ["*"]
  }

  statement {
    sid       = "ManagePrefixedResources"
    actions   = ["cloudwatch:*", "codedeploy:*", "dynamodb:*", "ecr:*", "firehose:*", "lambda:*", "logs:*", "s3:*", "sns:*", "sqs:*", "ssm:*"]
    resources = local.prefixed_resources
  }

  statement {
    sid       = "ReadDeploymentConfigs"
    actions   = ["codedeploy:GetDeploymentConfig"]
    resources = ["arn:${local.partition}:codedeploy:${local.arn_tail}:deploymentconfig:*"]
  }

  # API ids are generated: the APIs and domain names of this environment are told apart by their tags.
  statement {
    sid     = "CreateTaggedHttpApis"
    actions = ["apigateway:POST"]
    resources = [
      "arn:${local.partition}:apigateway:${local.region}::/apis",
      "arn:${local.partition}:apigateway:${local.region}::/domainnames",
    ]

    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/Environment"
      values   = [var.environment]
    }
  }

  statement {
    sid     = "ManageTaggedHttpApis"
    actions = ["apigateway:*"]
    resources = [
      "arn:${local.partition}:apigateway:${local.region}::/apis/*",
      "arn:${local.partition}:apigateway:${local.region}::/domainnames/*",
      "arn:${local.partition}:apigateway:${local.region}::/tags/*",
    ]

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/Environment"
      values   = [var.environment]
    }
  }

  # --- IAM: only bounded roles, never its own ---

  statement {
    sid = "ChangeRolesUnderTheBoundary"
    actions = [
      "iam:CreateRole",
      "iam:DeleteRolePolicy",
      "iam:DetachRolePolicy",
      "iam:PutRolePermissionsBoundary",
      "iam:PutRolePolicy",
    ]
    resources = ["arn:${local.partition}:iam::${local.account_id}:role/${local.prefix}-*"]

    condition {
      test     = "StringEquals"
      variable = "iam:PermissionsBoundary"
      values   = [aws_iam_policy.boundary.arn]
    }
  }

  statement {
    sid       = "AttachNamedAwsPoliciesUnderTheBoundary"
    actions   = ["iam:AttachRolePolicy"]
    resources = ["arn:${local.partition}:iam::${local.account_id}:role/${local.prefix}-*"]

    condition {
      test     = "StringEquals"
      variable = "iam:PermissionsBoundary"
      values   = [aws_iam_policy.boundary.arn]
    }

    condition {
      test     = "ArnEquals"
      variable = "iam:PolicyARN"
      values   = local.attachable_policy_arns
    }
  }

  statement {
    sid = "ManagePrefixedRoles"
    actions = [
      "iam:DeleteRole",
      "iam:GetRole",
      "iam:GetRolePolicy",
      "iam:ListAttachedRolePolicies",
      "iam:ListInstanceProfilesForRole",
      "iam:ListRolePolicies",
      "iam:ListRoleTags",
      "iam:TagRole",
      "iam:UntagRole",
      "iam:UpdateAssumeRolePolicy",
      "iam:UpdateRole",
      "iam:UpdateRoleDescription",
    ]
    resources = ["arn:${local.partition}:iam::${local.account_id}:role/${local.prefix}-*"]
  }

  statement {
    sid       = "PassPrefixedRolesToTheirServices"
    actions   = ["iam:PassRole"]
    resources = ["arn:${local.partition}:iam::${local.account_id}:role/${local.prefix}-*"]

    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = local.role_services
    }
  }

  statement {
    sid       = "ReadAwsManagedPolicies"
    actions   = ["iam:GetPolicy", "iam:GetPolicyVersion"]
    resources = ["arn:${local.partition}:iam::aws:policy/*"]
  }

  statement {
    sid       = "ReadGithubOidcProvider"
    actions   = ["iam:GetOpenIDConnectProvider"]
    resources = ["arn:${local.partition}:iam::${local.account_id}:oidc-provider/${local.oidc_host}"]
  }

  statement {
    sid       = "NeverChangeTheCiRolesOrTheBoundary"
    effect    = "Deny"
    actions   = ["iam:*"]
    resources = [aws_iam_role.terraform.arn, aws_iam_role.plan.arn, aws_iam_policy.boundary.arn]
  }

  statement {
    sid       = "NeverRemoveABoundary"
    effect    = "Deny"
    actions   = ["iam:DeleteRolePermissionsBoundary", "iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion"]
    resources = ["*"]
  }

  # --- KMS: keys of this environment, by tag ---

  statement {
    sid       = "CreateTaggedKeys"
    actions   = ["kms:CreateKey", "kms:TagResource"]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/Environment"
      values   = [var.environment]
    }
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

  statement {
    sid       = "ManagePrefixedKeyAliases"
    actions   = ["kms:CreateAlias", "kms:DeleteAlias", "kms:UpdateAlias"]
    resources = ["arn:${local.partition}:kms:${local.arn_tail}:alias/${local.prefix}-*"]
  }

  # --- EC2 (optional network): resources of this environment, by tag ---

  statement {
    sid       = "CreateNetworkTaggedForThisEnvironment"
    actions   = local.network_create_actions
    resources = ["arn:${local.partition}:ec2:${local.arn_tail}:*"]

    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/Environment"
      values   = [var.environment]
    }
  }

  statement {
    sid = "ChangeNetworkOfThisEnvironment"
    actions = [
      "ec2:Associate*",
      "ec2:Attach*",
      "ec2:Authorize*",
      "ec2:CreateRoute",
      "ec2:CreateTags",
      "ec2:Delete*",
      "ec2:Detach*",
      "ec2:Disassociate*",
      "ec2:Modify*",
      "ec2:ReleaseAddress",
      "ec2:Replace*",
      "ec2:Revoke*",
      "ec2:UpdateSecurityGroupRuleDescriptions*",
    ]
    resources = ["arn:${local.partition}:ec2:${local.arn_tail}:*"]

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/Environment"
      values   = [var.environment]
    }
  }

  statement {
    # Tags this environment's new resources (tag-on-create, and the VPC's default
    # security group, which AWS creates untagged).
    sid       = "TagNetworkForThisEnvironment"
    actions   = ["ec2:CreateTags"]
    resources = ["arn:${local.partition}:ec2:${local.arn_tail}:*"]

    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/Environment"
      values   = [var.environment]
    }
  }

  statement {
    sid       = "NeverRetagAnotherEnvironmentsNetwork"
    effect    = "Deny"
    actions   = ["ec2:CreateTags", "ec2:DeleteTags"]
    resources = ["arn:${local.partition}:ec2:${local.arn_tail}:*"]

    condition {
      test     = "StringNotEquals"
      variable = "aws:ResourceTag/Environment"
      values   = [var.environment]
    }

    condition {
      test     = "Null"
      variable = "aws:ResourceTag/Environment"
      values   = ["false"]
    }
  }

  # --- RDS (optional database) ---

  statement {
    sid     = "ManageDatabase"
    actions = ["rds:*"]
    resources = [
      "arn:${local.partition}:rds:${local.arn_tail}:db:${local.prefix}",
      "arn:${local.partition}:rds:${local.arn_tail}:db:${local.prefix}-replica-*",
      "arn:${local.partition}:rds:${local.arn_tail}:subgrp:${local.prefix}",
      "arn:${local.partition}:rds:${local.arn_tail}:pg:${local.prefix}-*",
      "arn:${local.partition}:rds:${local.arn_tail}:snapshot:${local.prefix}-*",
    ]
  }

  statement {
    # RDS creates, rotates and deletes the master password secret with the
    # caller's rights; only through RDS, which acts only on this environment's instances.
    sid       = "ManageRdsMasterSecretThroughRds"
    actions   = ["secretsmanager:*"]
    resources = ["arn:${local.partition}:secretsmanager:${local.arn_tail}:secret:rds!*"]

    condition {
      test     = "ForAnyValue:StringEquals"
      variable = "aws:CalledVia"
      values   = ["rds.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "terraform" {
  name   = "${local.ci_prefix}-terraform-access"
  role   = aws_iam_role.terraform.id
  policy = data.aws_iam_policy_document.terraform.json
}

# --- Plan role -------------------------------------------------------------------------------

resource "aws_iam_role" "plan" {
  name               = "${local.ci_prefix}-plan"
  description        = "Plans infra/terraform/envs/${var.environment} read-only for ${var.github_repository}"
  assume_role_policy = data.aws_iam_policy_document.plan_trust.json
}

# Describe/Get/List on every service the configuration uses; AWS keeps the list current.
resource "aws_iam_role_policy_attachment" "plan_read_only" {
  role       = aws_iam_role.plan.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/ReadOnlyAccess"
}

data "aws_iam_policy_document" "plan" {
  statement {
    sid       = "ReadState"
    actions   = ["s3:GetObject"]
    resources = ["${var.state_bucket_arn}/${local.state_key}"]
  }

  statement {
    sid       = "DecryptState"
    actions   = ["kms:Decrypt"]
    resources = [var.state_kms_key_arn]
  }

  statement {
    # The SecureString parameter's refresh decrypts it (it holds key hashes, not keys).
    sid       = "DecryptParametersOfThisEnvironment"
    actions   = ["kms:Decrypt"]
    resources = ["arn:${local.partition}:kms:${local.arn_tail}:key/*"]

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/Environment"
      values   = [var.environment]
    }
  }

  # ReadOnlyAccess includes reading data; a plan never needs it.
  statement {
    sid       = "NeverReadCatalogData"
    effect    = "Deny"
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = ["arn:${local.partition}:s3:::${local.prefix}-*/*"]
  }

  statement {
    sid    = "NeverReadData"
    effect = "Deny"
    actions = [
      "dynamodb:BatchGetItem",
      "dynamodb:GetItem",
      "dynamodb:GetRecords",
      "dynamodb:Query",
      "dynamodb:Scan",
      "secretsmanager:GetSecretValue",
      "sqs:ReceiveMessage",
    ]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "plan" {
  name   = "${local.ci_prefix}-plan-access"
  role   = aws_iam_role.plan.id
  policy = data.aws_iam_policy_document.plan.json
}
