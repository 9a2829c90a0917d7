output "codedeploy_app_name" {
  description = "Name of the CodeDeploy application."
  value       = aws_codedeploy_app.functions.name
}

output "codedeploy_app_arn" {
  description = "ARN of the CodeDeploy application."
  value       = aws_codedeploy_app.functions.arn
}

output "codedeploy_api_deployment_group_name" {
  description = "Deployment group that shifts the API function's live alias."
  value       = aws_codedeploy_deployment_group.function["api"].deployment_group_name
}

output "codedeploy_ingest_deployment_group_name" {
  description = "Deployment group that shifts the ingest function's live alias."
  value       = aws_codedeploy_deployment_group.function["ingest"].deployment_group_name
}

output "codedeploy_deployment_group_arns" {
  description = "ARNs of the deployment groups, keyed by function (api, ingest)."
  value       = { for key, group in aws_codedeploy_deployment_group.function : key => group.arn }
}

output "codedeploy_deployment_config_name" {
  description = "Traffic-shifting configuration used by both deployment groups."
  value       = var.deployment_config_name
}
