# What an administrator creates once per account, before any pipeline runs:
# the state bucket and its key, the GitHub OIDC provider, and for each
# environment the CI roles and the permissions boundary (modules/ci_roles).
# Nothing here is applied by CI: these are the anchors the CI roles cannot
# change.
#
# Remote state for every environment: one versioned, KMS-encrypted bucket.
# Locking uses the S3 native lock file (backend option use_lockfile = true,
# Terraform >= 1.10): a <key>.tflock object written with a conditional PUT.
# That replaces the DynamoDB lock table, so there is no extra table to create,
# secure or pay for.

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Project   = var.name
      Component = "terraform-state"
      ManagedBy = "terraform"
    }
  }
}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  bucket_name = "${var.name}-tfstate-${data.aws_caller_identity.current.account_id}"
  # The environments of the pipeline, in promotion order (infra/terraform/envs/<name>).
  environments = ["dev", "staging", "prod"]
}

data "aws_iam_policy_document" "state_key" {
  #checkov:skip=CKV_AWS_109:Key policy: Resource "*" means this key; the account root statement keeps the key manageable through IAM, as AWS recommends.
  #checkov:skip=CKV_AWS_111:Key policy: Resource "*" means this key, and only this account's principals (and the named services) are granted.
  #checkov:skip=CKV_AWS_356:Key policy: Resource "*" is the only value a key policy accepts and means this key.
  statement {
    sid       = "AccountAdministration"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
}

resource "aws_kms_key" "state" {
  description             = "Encrypts Terraform state for ${var.name}"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_deletion_window_in_days
  policy                  = data.aws_iam_policy_document.state_key.json
}

resource "aws_kms_alias" "state" {
  name          = "alias/${var.name}-tfstate"
  target_key_id = aws_kms_key.state.key_id
}

resource "aws_s3_bucket" "state" {
  #checkov:skip=CKV_AWS_18:No server access logs: state changes are kept as object versions. Reads of state are not logged unless the account's trail records S3 data events for this bucket (docs/deploy.md).
  #checkov:skip=CKV_AWS_144:State is versioned and recoverable; cross-region replication doubles storage for no practical gain here.
  #checkov:skip=CKV2_AWS_62:Nothing reacts to state writes, so the bucket sends no event notifications.
  bucket = local.bucket_name

  lifecycle {
    prevent_destroy = true
  }
}

resource "aws_s3_bucket_ownership_controls" "state" {
  bucket = aws_s3_bucket.state.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "state" {
  bucket = aws_s3_bucket.state.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "state" {
  bucket = aws_s3_bucket.state.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "state" {
  bucket = aws_s3_bucket.state.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.state.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "state" {
  bucket = aws_s3_bucket.state.id

  rule {
    id     = "expire-old-state-versions"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_expiration_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  depends_on = [aws_s3_bucket_versioning.state]
}

data "aws_iam_policy_document" "state_bucket" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.state.arn, "${aws_s3_bucket.state.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "state" {
  bucket = aws_s3_bucket.state.id
  policy = data.aws_iam_policy_document.state_bucket.json

  depends_on = [aws_s3_bucket_public_access_block.state]
}

# --- GitHub Actions identity ------------------------------------------------------------
# One OIDC provider per account and URL: created here once; the environments
# look it up (modules/github_oidc).

resource "aws_iam_openid_connect_provider" "github" {
  url            = "https://token.actions.githubusercontent.com"
  client_id_list = ["sts.amazonaws.com"]
}

module "ci_roles" {
  source   = "../modules/ci_roles"
  for_each = toset(local.environments)

  name              = var.name
  environment       = each.key
  github_repository = var.github_repository
  oidc_provider_arn = aws_iam_openid_connect_provider.github.arn
  state_bucket_arn  = aws_s3_bucket.state.arn
  state_kms_key_arn = aws_kms_key.state.arn
}
