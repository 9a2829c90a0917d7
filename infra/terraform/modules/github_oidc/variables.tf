variable "name" {
  type        = string
  description = "Name prefix shared by every resource of the service."
  default     = "ludex"
}

variable "environment" {
  type        = string
  description = "Environment name (dev, staging, prod)."
}

variable "github_repository" {
  type        = string
  description = "The only GitHub repository, as owner/name, whose workflows may assume the roles."

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "github_repository must look like owner/name."
  }
}

variable "deploy_branches" {
  type        = list(string)
  description = "Branches whose workflow runs may assume the deploy role outside any GitHub environment (refs/heads/<branch>); the release workflow deploys from environments, so usually none."
  default     = []
}

variable "deploy_environments" {
  type        = list(string)
  description = "GitHub environments whose jobs may assume the deploy role (jobs that declare `environment:` present that subject instead of the branch)."
  default     = []
}

variable "api_function_arn" {
  type        = string
  description = "Unqualified ARN of the API function."
}

variable "ingest_function_arn" {
  type        = string
  description = "Unqualified ARN of the ingest function."
}

variable "ecr_repository_arn" {
  type        = string
  description = "ARN of the API image repository the deploy role pushes to."
}

variable "codedeploy_app_name" {
  type        = string
  description = "Name of the CodeDeploy application."
}

variable "codedeploy_deployment_group_names" {
  type        = list(string)
  description = "Deployment groups the deploy role may start deployments in."
}

variable "codedeploy_deployment_config_name" {
  type        = string
  description = "Deployment configuration the deployment groups use (read by CreateDeployment)."
}

variable "state_bucket_arn" {
  type        = string
  description = "ARN of the Terraform state bucket (from infra/terraform/bootstrap); null grants no state access."
  default     = null
}

variable "state_key" {
  type        = string
  description = "Object key of this environment's state file in the state bucket; null grants no state access."
  default     = null
}

variable "state_kms_key_arn" {
  type        = string
  description = "ARN of the KMS key that encrypts the state bucket; null grants no state access."
  default     = null
}


variable "permissions_boundary_arn" {
  type        = string
  description = "Permissions boundary of the environment (bootstrap, modules/ci_roles); the deploy role carries it."
}
