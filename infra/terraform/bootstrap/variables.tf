variable "name" {
  type        = string
  description = "Name prefix for the state bucket and its key; the bucket is named <name>-tfstate-<account id>."
  default     = "ludex"
}

variable "region" {
  type        = string
  description = "AWS region that holds the state bucket (usually the same region as the environments)."
}

variable "noncurrent_version_expiration_days" {
  type        = number
  description = "Days to keep superseded versions of state files before they expire."
  default     = 90
}

variable "kms_deletion_window_in_days" {
  type        = number
  description = "Waiting period before the state encryption key is deleted after it is scheduled for deletion."
  default     = 30
}

variable "github_repository" {
  type        = string
  description = "GitHub repository (owner/name) whose workflows may assume the CI roles."
}
