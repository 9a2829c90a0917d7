# The whole ludex service for one environment, wired from the single-concern
# modules next to this one. envs/dev, envs/staging and envs/prod differ only in the values
# they pass here.

data "aws_partition" "current" {}

data "aws_caller_identity" "current" {}

locals {
  # Created with the CI roles in bootstrap (modules/ci_roles); every role of
  # the environment carries it, or the apply role could not create the role.
  permissions_boundary_arn = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:policy/${var.name}-${var.environment}-boundary"

  enable_vpc = var.enable_vpc || var.enable_rds

  function_subnet_ids         = local.enable_vpc ? module.network[0].private_subnet_ids : []
  function_security_group_ids = local.enable_vpc ? [module.network[0].security_group_functions_id] : []

  postgres_store = var.enable_rds ? {
    url                 = module.database[0].db_instance_store_url
    password_secret_arn = module.database[0].db_instance_master_user_secret_arn
  } : null
}

module "storage" {
  source = "../storage"

  name                      = var.name
  environment               = var.environment
  table_deletion_protection = var.table_deletion_protection
  force_destroy             = var.force_destroy
}

module "network" {
  source = "../network"
  count  = local.enable_vpc ? 1 : 0

  permissions_boundary_arn   = local.permissions_boundary_arn
  name                       = var.name
  environment                = var.environment
  enable_nat_gateway         = var.enable_nat_gateway
  flow_log_retention_in_days = var.log_retention_in_days
  kms_key_arn                = module.storage.kms_key_arn
}

module "database" {
  source = "../database"
  count  = var.enable_rds ? 1 : 0

  permissions_boundary_arn = local.permissions_boundary_arn
  name                     = var.name
  environment              = var.environment
  vpc_id                   = module.network[0].vpc_id
  subnet_ids               = module.network[0].private_subnet_ids
  client_security_group_id = module.network[0].security_group_functions_id
  kms_key_arn              = module.storage.kms_key_arn
  instance_class           = var.db_instance_class
  multi_az                 = var.db_multi_az
  deletion_protection      = var.db_deletion_protection
  log_retention_in_days    = var.log_retention_in_days
  replica_count            = var.db_replica_count
  alarm_topic_arn          = module.observability.sns_topic_arn
}

module "ingest_function" {
  source = "../ingest_function"

  permissions_boundary_arn       = local.permissions_boundary_arn
  name                           = var.name
  environment                    = var.environment
  package_path                   = var.ingest_package_path
  memory_size                    = var.ingest_memory_size
  timeout                        = var.ingest_timeout
  reserved_concurrent_executions = var.ingest_reserved_concurrent_executions
  log_retention_in_days          = var.log_retention_in_days
  rust_log                       = var.rust_log
  history_retention              = var.history_retention
  bucket_name                    = module.storage.bucket_name
  bucket_arn                     = module.storage.bucket_arn
  dynamodb_table_name            = module.storage.dynamodb_table_name
  dynamodb_table_arn             = module.storage.dynamodb_table_arn
  kms_key_arn                    = module.storage.kms_key_arn
  postgres_store                 = local.postgres_store
  subnet_ids                     = local.function_subnet_ids
  security_group_ids             = local.function_security_group_ids
}

module "api_function" {
  source = "../api_function"

  permissions_boundary_arn       = local.permissions_boundary_arn
  name                           = var.name
  environment                    = var.environment
  image_uri                      = var.api_image_uri
  memory_size                    = var.api_memory_size
  timeout                        = var.api_timeout
  reserved_concurrent_executions = var.api_reserved_concurrent_executions
  log_retention_in_days          = var.log_retention_in_days
  rust_log                       = var.rust_log
  history_retention              = var.history_retention
  reads_require_key              = var.reads_require_key
  cors_allowed_origins           = var.cors_allowed_origins
  force_delete                   = var.force_destroy
  bucket_name                    = module.storage.bucket_name
  bucket_arn                     = module.storage.bucket_arn
  dynamodb_table_name            = module.storage.dynamodb_table_name
  dynamodb_table_arn             = module.storage.dynamodb_table_arn
  kms_key_arn                    = module.storage.kms_key_arn
  postgres_store                 = local.postgres_store
  subnet_ids                     = local.function_subnet_ids
  security_group_ids             = local.function_security_group_ids
}

module "http_api" {
  source = "../http_api"

  name                   = var.name
  environment            = var.environment
  function_name          = module.api_function.api_function_name
  function_alias_name    = module.api_function.api_function_alias_name
  function_alias_arn     = module.api_function.api_function_alias_arn
  throttling_rate_limit  = var.throttling_rate_limit
  throttling_burst_limit = var.throttling_burst_limit
  cors_allowed_origins   = var.cors_allowed_origins
  log_retention_in_days  = var.log_retention_in_days
  kms_key_arn            = module.storage.kms_key_arn
  domain_name            = var.domain_name
  certificate_arn        = var.certificate_arn
}

module "observability" {
  source = "../observability"

  permissions_boundary_arn = local.permissions_boundary_arn
  name                     = var.name
  environment              = var.environment
  ingest_function_name     = module.ingest_function.ingest_function_name
  api_function_name        = module.api_function.api_function_name
  http_api_id              = module.http_api.http_api_id
  dlq_name                 = module.ingest_function.sqs_dlq_name
  kms_key_arn              = module.storage.kms_key_arn
  alarm_email              = var.alarm_email
  enable_log_export        = var.enable_log_export
  log_export_bucket_arn    = module.storage.log_bucket_arn
  log_retention_in_days    = var.log_retention_in_days
  log_group_names = [
    module.ingest_function.ingest_function_log_group_name,
    module.api_function.api_function_log_group_name,
    module.http_api.http_api_log_group_name,
  ]
}

module "release_hook" {
  source = "../release_hook"

  permissions_boundary_arn = local.permissions_boundary_arn
  name                     = var.name
  environment              = var.environment
  api_function_name        = module.api_function.api_function_name
  api_function_arn         = module.api_function.api_function_arn
  ingest_function_name     = module.ingest_function.ingest_function_name
  ingest_function_arn      = module.ingest_function.ingest_function_arn
  bucket_name              = module.storage.bucket_name
  bucket_arn               = module.storage.bucket_arn
  kms_key_arn              = module.storage.kms_key_arn
  log_retention_in_days    = var.log_retention_in_days
  release_alarm_names = {
    (module.api_function.api_function_name)       = module.observability.cloudwatch_api_alarm_names
    (module.ingest_function.ingest_function_name) = module.observability.cloudwatch_ingest_alarm_names
  }
}

module "deploy" {
  source = "../deploy"

  permissions_boundary_arn = local.permissions_boundary_arn
  name                     = var.name
  environment              = var.environment
  deployment_config_name   = var.deployment_config_name
  api_alarm_names          = module.observability.cloudwatch_api_alarm_names
  ingest_alarm_names       = module.observability.cloudwatch_ingest_alarm_names
}

module "github_oidc" {
  source = "../github_oidc"
  count  = var.github_repository == null ? 0 : 1

  permissions_boundary_arn          = local.permissions_boundary_arn
  name                              = var.name
  environment                       = var.environment
  github_repository                 = var.github_repository
  deploy_branches                   = var.github_deploy_branches
  deploy_environments               = var.github_deploy_environments
  api_function_arn                  = module.api_function.api_function_arn
  ingest_function_arn               = module.ingest_function.ingest_function_arn
  ecr_repository_arn                = module.api_function.ecr_repository_arn
  codedeploy_app_name               = module.deploy.codedeploy_app_name
  codedeploy_deployment_config_name = module.deploy.codedeploy_deployment_config_name
  codedeploy_deployment_group_names = [
    module.deploy.codedeploy_api_deployment_group_name,
    module.deploy.codedeploy_ingest_deployment_group_name,
  ]
  state_bucket_arn  = var.state_bucket_name == null ? null : "arn:${data.aws_partition.current.partition}:s3:::${var.state_bucket_name}"
  state_key         = var.state_key
  state_kms_key_arn = var.state_kms_key_arn
}

# Browsers send uploads straight to the bucket through presigned URLs (POST /uploads/presign,
# docs/api.md), past API Gateway's request size: the web UI is served by the API, so the
# bucket lets the API's origin (and the API's other CORS origins) PUT objects and read the
# ETag that tells the UI which ingest is theirs. Presigned URLs are signed for uploads/ only.
resource "aws_s3_bucket_cors_configuration" "direct_uploads" {
  bucket = module.storage.bucket_name

  cors_rule {
    allowed_methods = ["PUT"]
    allowed_origins = distinct(concat([trimsuffix(module.http_api.http_api_url, "/")], var.cors_allowed_origins))
    allowed_headers = ["content-type"]
    expose_headers  = ["ETag"]
    max_age_seconds = 600
  }
}
