output "http_api_id" {
  description = "ID of the HTTP API (the ApiId dimension of its CloudWatch metrics)."
  value       = aws_apigatewayv2_api.http.id
}

output "http_api_stage_name" {
  description = "Name of the stage that serves traffic ($default)."
  value       = aws_apigatewayv2_stage.default.name
}

output "http_api_url" {
  description = "Base URL of the API: https://<custom domain>/ when one is set, else the execute-api URL."
  value       = local.custom_domain ? "https://${var.domain_name}/" : aws_apigatewayv2_stage.default.invoke_url
}

output "http_api_execution_arn" {
  description = "Execution ARN of the API, for invoke permissions."
  value       = aws_apigatewayv2_api.http.execution_arn
}

output "http_api_log_group_name" {
  description = "Name of the access-log group."
  value       = aws_cloudwatch_log_group.access.name
}

output "http_api_domain_target" {
  description = "Regional domain name and hosted zone to point a DNS alias record at; null without a custom domain."
  value = local.custom_domain ? {
    domain_name    = aws_apigatewayv2_domain_name.custom[0].domain_name_configuration[0].target_domain_name
    hosted_zone_id = aws_apigatewayv2_domain_name.custom[0].domain_name_configuration[0].hosted_zone_id
  } : null
}
