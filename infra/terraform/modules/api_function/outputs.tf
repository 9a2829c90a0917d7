output "api_function_name" {
  description = "Name of the API function."
  value       = aws_lambda_function.api.function_name
}

output "api_function_arn" {
  description = "Unqualified ARN of the API function."
  value       = aws_lambda_function.api.arn
}

output "api_function_alias_name" {
  description = "Name of the alias that API Gateway invokes and CodeDeploy shifts (live)."
  value       = aws_lambda_alias.live.name
}

output "api_function_alias_arn" {
  description = "ARN of the live alias (the API Gateway integration target)."
  value       = aws_lambda_alias.live.arn
}

output "api_function_log_group_name" {
  description = "Name of the function's CloudWatch log group."
  value       = aws_cloudwatch_log_group.api.name
}

output "api_function_role_arn" {
  description = "ARN of the function's execution role."
  value       = aws_iam_role.api.arn
}

output "ecr_repository_url" {
  description = "URL of the image repository (docker push target)."
  value       = aws_ecr_repository.api.repository_url
}

output "ecr_repository_arn" {
  description = "ARN of the image repository."
  value       = aws_ecr_repository.api.arn
}

output "ssm_api_keys_parameter_name" {
  description = "Name of the SecureString parameter with the API key hashes (LUDEX_API_KEYS_PARAMETER)."
  value       = aws_ssm_parameter.api_keys.name
}

output "ssm_api_keys_parameter_arn" {
  description = "ARN of the API keys parameter."
  value       = aws_ssm_parameter.api_keys.arn
}

output "api_function_alias_version" {
  description = "Version the live alias serves now (read back from AWS on every refresh; CodeDeploy moves it)."
  value       = aws_lambda_alias.live.function_version
}
