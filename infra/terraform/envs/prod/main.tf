# The prod environment. Every non-secret setting of prod is written here,
# reviewed like code: there is no tfvars file and no variable with a default
# that a run could forget to pass. The only inputs are the region and the
# repository (which every run passes, and which have no default) and the
# code, which belongs to the release (docs/ci-cd.md). Secrets never appear
# here: the database password is RDS-managed in Secrets Manager and the API
# key hashes live in SSM.

locals {
  name        = "ludex"
  environment = "prod"
  state_key   = "prod/terraform.tfstate" # same as the backend key in versions.tf
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

# prod keeps data: a year of logs, deletion protection on the table and the
# database, a Multi-AZ database, and deployments only from reviewed GitHub
# environments.
module "service" {
  source = "../../modules/service"

  name                = local.name
  environment         = local.environment
  ingest_package_path = var.ingest_package_path
  api_image_uri       = var.api_image_uri

  log_retention_in_days                 = 365
  ingest_reserved_concurrent_executions = 20
  api_reserved_concurrent_executions    = 100
  throttling_rate_limit                 = 100
  throttling_burst_limit                = 200
  cors_allowed_origins                  = []
  domain_name                           = null # with a domain: its ACM certificate_arn too
  certificate_arn                       = null

  table_deletion_protection = true
  force_destroy             = false
  enable_vpc                = false
  enable_rds                = false # PostgreSQL instead of DynamoDB (implies the VPC)
  db_replica_count          = 0
  db_multi_az               = true
  db_deletion_protection    = true

  alarm_email       = null # an on-call address receives the alarms once set here
  enable_log_export = false

  github_repository          = var.github_repository
  github_deploy_environments = [local.environment]
  state_bucket_name          = "${local.name}-tfstate-${data.aws_caller_identity.current.account_id}"
  state_key                  = local.state_key
  state_kms_key_arn          = data.aws_kms_alias.state.target_key_arn
}
