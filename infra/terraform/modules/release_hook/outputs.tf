output "codedeploy_hook_function_name" {
  description = "Name of the BeforeAllowTraffic hook function (the AppSpec's Hooks entry)."
  value       = aws_lambda_function.hook.function_name
}

output "codedeploy_hook_function_arn" {
  description = "ARN of the hook function; the CodeDeploy service role may invoke it."
  value       = aws_lambda_function.hook.arn
}

output "ssm_canary_api_key_parameter_name" {
  description = "SecureString parameter that holds the canary API key of the write round trip."
  value       = aws_ssm_parameter.canary_api_key.name
}
