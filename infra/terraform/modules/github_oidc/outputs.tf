output "github_deploy_role_arn" {
  description = "ARN of the role the release workflow's deploy step assumes (GitHub environment variable AWS_DEPLOY_ROLE_ARN)."
  value       = aws_iam_role.deploy.arn
}

output "github_oidc_provider_arn" {
  description = "ARN of the account's GitHub OIDC provider the role trusts (created in bootstrap)."
  value       = local.oidc_provider_arn
}
