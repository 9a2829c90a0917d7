output "api_function_name" {
  description = "Name of the API function."
  value       = module.service.api_function_name
}

output "api_function_alias_name" {
  description = "Alias of the API function that serves traffic and CodeDeploy shifts."
  value       = module.service.api_function_alias_name
}

output "ingest_function_name" {
  description = "Name of the ingest function."
  value       = module.service.ingest_function_name
}

output "ingest_function_alias_name" {
  description = "Alias of the ingest function that S3 invokes and CodeDeploy shifts."
  value       = module.service.ingest_function_alias_name
}

output "ecr_repository_url" {
  description = "Repository the API image is pushed to."
  value       = module.service.ecr_repository_url
}

output "http_api_url" {
  description = "Base URL of the API."
  value       = module.service.http_api_url
}

output "http_api_domain_target" {
  description = "Where to point the custom domain's DNS alias record; null without a custom domain."
  value       = module.service.http_api_domain_target
}

output "codedeploy_app_name" {
  description = "CodeDeploy application of both functions."
  value       = module.service.codedeploy_app_name
}

output "codedeploy_api_deployment_group_name" {
  description = "Deployment group for the API function."
  value       = module.service.codedeploy_api_deployment_group_name
}

output "codedeploy_ingest_deployment_group_name" {
  description = "Deployment group for the ingest function."
  value       = module.service.codedeploy_ingest_deployment_group_name
}

output "codedeploy_hook_function_name" {
  description = "BeforeAllowTraffic hook of both deployment groups (the AppSpec's Hooks entry)."
  value       = module.service.codedeploy_hook_function_name
}

output "bucket_name" {
  description = "Catalog bucket (uploads/, rejected/, covers/)."
  value       = module.service.bucket_name
}

output "dynamodb_table_name" {
  description = "DynamoDB catalog table."
  value       = module.service.dynamodb_table_name
}

output "ssm_api_keys_parameter_name" {
  description = "SecureString parameter that holds the API key hashes."
  value       = module.service.ssm_api_keys_parameter_name
}

output "sqs_dlq_name" {
  description = "Dead-letter queue of the ingest function."
  value       = module.service.sqs_dlq_name
}

output "cloudwatch_dashboard_name" {
  description = "CloudWatch dashboard of the environment."
  value       = module.service.cloudwatch_dashboard_name
}

output "sns_topic_arn" {
  description = "Alarm topic; subscribe on-call addresses here."
  value       = module.service.sns_topic_arn
}

output "github_deploy_role_arn" {
  description = "Role the deploy workflow assumes through OIDC; null when github_repository is null."
  value       = module.service.github_deploy_role_arn
}

output "db_instance_address" {
  description = "Host name of the PostgreSQL instance; null unless enable_rds."
  value       = module.service.db_instance_address
}

output "db_instance_replica_addresses" {
  description = "Host names of the PostgreSQL read replicas; empty unless enable_rds and db_replica_count > 0."
  value       = module.service.db_instance_replica_addresses
}
