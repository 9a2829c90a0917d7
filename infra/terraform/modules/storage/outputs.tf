output "bucket_name" {
  description = "Name of the catalog bucket (uploads/, rejected/, covers/)."
  value       = aws_s3_bucket.catalog.bucket
}

output "bucket_arn" {
  description = "ARN of the catalog bucket."
  value       = aws_s3_bucket.catalog.arn
}

output "log_bucket_name" {
  description = "Name of the bucket that receives S3 access logs and, when enabled, exported CloudWatch logs."
  value       = aws_s3_bucket.access_logs.bucket
}

output "log_bucket_arn" {
  description = "ARN of the log bucket."
  value       = aws_s3_bucket.access_logs.arn
}

output "dynamodb_table_name" {
  description = "Name of the DynamoDB catalog table."
  value       = aws_dynamodb_table.catalog.name
}

output "dynamodb_table_arn" {
  description = "ARN of the DynamoDB catalog table (indexes are <arn>/index/*)."
  value       = aws_dynamodb_table.catalog.arn
}

output "kms_key_arn" {
  description = "ARN of the environment's data key (bucket, table, queues, topics, log groups, function settings)."
  value       = aws_kms_key.data.arn
}
