provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Project     = var.name
      Environment = "dev"
      ManagedBy   = "terraform"
    }
  }
}

# dev favours low cost and easy teardown: short log retention, no deletion
# protection, buckets that `terraform destroy` may empty.
module "service" {
  source = "../../modules/service"

  name                = var.name
  environment         = "dev"
  ingest_package_path = var.ingest_package_path
  api_image_uri       = var.api_image_uri

  log_retention_in_days                 = 14
  ingest_reserved_concurrent_executions = 5
  api_reserved_concurrent_executions    = 10
  throttling_rate_limit                 = 20
  throttling_burst_limit                = 40
  cors_allowed_origins                  = var.cors_allowed_origins
  domain_name                           = var.domain_name
  certificate_arn                       = var.certificate_arn

  table_deletion_protection = false
  force_destroy             = true
  enable_vpc                = var.enable_vpc
  enable_rds                = var.enable_rds
  db_multi_az               = false
  db_deletion_protection    = false

  alarm_email       = var.alarm_email
  enable_log_export = var.enable_log_export

  github_repository          = var.github_repository
  github_deploy_environments = ["dev"]
  state_bucket_name          = var.state_bucket_name
  state_key                  = "dev/terraform.tfstate" # same as the backend key in versions.tf
  state_kms_key_arn          = var.state_kms_key_arn
}
