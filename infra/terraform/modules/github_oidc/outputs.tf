output "github_deploy_role_arn" {
  description = "ARN of the role the deploy workflow assumes (aws-actions/configure-aws-credentials role-to-assume)."
  value       = aws_iam_role.deploy.arn
}

output "github_terraform_role_arn" {
  description = "ARN of the role the Terraform apply workflow assumes; null when terraform_environments is empty."
  value       = local.create_apply_role ? aws_iam_role.terraform[0].arn : null
}

output "github_oidc_provider_arn" {
  description = "ARN of the GitHub OIDC provider the roles trust."
  value       = local.oidc_provider_arn
}
