variable "name" {
  type        = string
  description = "Name prefix shared by every resource of the service."
  default     = "ludex"
}

variable "environment" {
  type        = string
  description = "Environment the roles work on (dev, staging, prod); its resources are named <name>-<environment>-*."
}

variable "github_repository" {
  type        = string
  description = "The only GitHub repository, as owner/name, whose workflows may assume the roles."

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "github_repository must look like owner/name."
  }
}

variable "oidc_provider_arn" {
  type        = string
  description = "ARN of the account's GitHub OIDC provider (created once, in bootstrap)."
}

variable "state_bucket_arn" {
  type        = string
  description = "ARN of the Terraform state bucket."
}

variable "state_kms_key_arn" {
  type        = string
  description = "ARN of the KMS key that encrypts the state bucket."
}

variable "release_branch" {
  type        = string
  description = "Branch whose pipeline plans every environment before it applies (plan role subject ref:refs/heads/<branch>)."
  default     = "main"
}
