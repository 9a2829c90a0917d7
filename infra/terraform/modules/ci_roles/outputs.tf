output "github_terraform_role_arn" {
  description = "Role the release workflow's apply step assumes in the GitHub environment of the same name (AWS_TERRAFORM_ROLE_ARN)."
  value       = aws_iam_role.terraform.arn
}

output "github_plan_role_arn" {
  description = "Read-only role that plans this environment for pull requests and for the release pipeline (AWS_PLAN_ROLE_ARN_<ENV>)."
  value       = aws_iam_role.plan.arn
}

output "github_permissions_boundary_arn" {
  description = "Permissions boundary every role of this environment must carry; the apply role can create no role without it."
  value       = aws_iam_policy.boundary.arn
}
