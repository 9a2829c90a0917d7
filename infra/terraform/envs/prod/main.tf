provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Project     = var.name
      Environment = "prod"
      ManagedBy   = "terraform"
    }
  }
}

# prod keeps data: a year of logs, deletion protection on the table and the
# database, a Multi-AZ database, and deployments only from reviewed GitHub
# environments.
module "service" {
  source = "../../modules/service"

  name                = var.name
  environment         = "prod"
  ingest_package_path = var.ingest_package_path
  api_image_uri       = var.api_image_uri

  log_retention_in_days                 = 365
  ingest_reserved_concurrent_executions = 20
  api_reserved_concurrent_executions    = 100
  throttling_rate_limit                 = 100
  throttling_burst_limit                = 200
  cors_allowed_origins                  = var.cors_allowed_origins
  domain_name                           = var.domain_name
  certificate_arn                       = var.certificate_arn

  table_deletion_protection = true
  force_destroy             = false
  enable_vpc                = var.enable_vpc
  enable_rds                = var.enable_rds
  db_multi_az               = true
  db_deletion_protection    = true

  alarm_email       = var.alarm_email
  enable_log_export = var.enable_log_export

  github_repository          = var.github_repository
  github_deploy_environments = ["prod"]
  state_bucket_name          = var.state_bucket_name
  state_key                  = "prod/terraform.tfstate" # same as the backend key in versions.tf
  state_kms_key_arn          = var.state_kms_key_arn
}
