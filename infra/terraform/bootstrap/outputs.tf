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

output "github_terraform_role_arns" {
  description = "Apply role of each environment: the GitHub environment variable AWS_TERRAFORM_ROLE_ARN."
  value       = { for env, roles in module.ci_roles : env => roles.github_terraform_role_arn }
}

output "github_plan_role_arns" {
  description = "Read-only plan role of each environment: the repository variables AWS_PLAN_ROLE_ARN_<ENV>."
  value       = { for env, roles in module.ci_roles : env => roles.github_plan_role_arn }
}

output "github_oidc_provider_arn" {
  description = "The account's GitHub OIDC provider, which every CI role trusts."
  value       = aws_iam_openid_connect_provider.github.arn
}
