output "ingest_function_name" {
  description = "Name of the ingest function."
  value       = aws_lambda_function.ingest.function_name
}

output "ingest_function_arn" {
  description = "Unqualified ARN of the ingest function."
  value       = aws_lambda_function.ingest.arn
}

output "ingest_function_alias_name" {
  description = "Name of the alias that S3 invokes and CodeDeploy shifts (live)."
  value       = aws_lambda_alias.live.name
}

output "ingest_function_alias_arn" {
  description = "ARN of the live alias."
  value       = aws_lambda_alias.live.arn
}

output "ingest_function_log_group_name" {
  description = "Name of the function's CloudWatch log group."
  value       = aws_cloudwatch_log_group.ingest.name
}

output "ingest_function_role_arn" {
  description = "ARN of the function's execution role."
  value       = aws_iam_role.ingest.arn
}

output "sqs_dlq_name" {
  description = "Name of the dead-letter queue for failed S3 events."
  value       = aws_sqs_queue.dlq.name
}

output "sqs_dlq_arn" {
  description = "ARN of the dead-letter queue for failed S3 events."
  value       = aws_sqs_queue.dlq.arn
}

output "ingest_function_alias_version" {
  description = "Version the live alias serves now (read back from AWS on every refresh; CodeDeploy moves it)."
  value       = aws_lambda_alias.live.function_version
}
