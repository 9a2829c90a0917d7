output "bucket_name" {
  description = "Name of the state bucket; pass it to `terraform init -backend-config=\"bucket=...\"`."
  value       = aws_s3_bucket.state.bucket
}

output "bucket_arn" {
  description = "ARN of the state bucket, for IAM policies that read or write state."
  value       = aws_s3_bucket.state.arn
}

output "kms_key_arn" {
  description = "ARN of the KMS key that encrypts state; pass it as the backend's kms_key_id."
  value       = aws_kms_key.state.arn
}
