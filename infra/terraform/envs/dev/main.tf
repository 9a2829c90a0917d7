# The dev environment. Every non-secret setting of dev is written here,
# reviewed like code: there is no tfvars file and no variable with a default
# that a run could forget to pass. The only inputs are the region and the
# repository (which every run passes, and which have no default) and the
# code, which belongs to the release (docs/ci-cd.md). Secrets never appear
# here: the database password is RDS-managed in Secrets Manager and the API
# key hashes live in SSM.

locals {
  name        = "ludex"
  environment = "dev"
  state_key   = "dev/terraform.tfstate" # same as the backend key in versions.tf
}

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Project     = local.name
      Environment = local.environment
      ManagedBy   = "terraform"
    }
  }
}

# The state bucket and its key come from bootstrap; their names follow from the account.
data "aws_caller_identity" "current" {}

data "aws_kms_alias" "state" {
  name = "alias/${local.name}-tfstate"
}

# dev favours low cost and easy teardown: short log retention, no deletion
# protection, buckets that `terraform destroy` may empty.
module "service" {
  source = "../../modules/service"

  name                = local.name
  environment         = local.environment
  ingest_package_path = var.ingest_package_path
  api_image_uri       = var.api_image_uri

  log_retention_in_days                 = 14
  ingest_reserved_concurrent_executions = 5
  api_reserved_concurrent_executions    = 10
  throttling_rate_limit                 = 20
  throttling_burst_limit                = 40
  cors_allowed_origins                  = []
  domain_name                           = null # with a domain: its ACM certificate_arn too
  certificate_arn                       = null

  table_deletion_protection = false
  force_destroy             = true
  enable_vpc                = false
  enable_rds                = false # PostgreSQL instead of DynamoDB (implies the VPC)
  db_replica_count          = 0
  db_multi_az               = false
  db_deletion_protection    = false

  alarm_email       = null # an on-call address receives the alarms once set here
  enable_log_export = false

  github_repository          = var.github_repository
  github_deploy_environments = [local.environment]
  state_bucket_name          = "${local.name}-tfstate-${data.aws_caller_identity.current.account_id}"
  state_key                  = local.state_key
  state_kms_key_arn          = data.aws_kms_alias.state.target_key_arn
}
