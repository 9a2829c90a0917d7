variable "name" {
  type        = string
  description = "Name prefix shared by every resource of the service."
  default     = "ludex"
}

variable "environment" {
  type        = string
  description = "Environment name (dev, staging, prod) appended to the name prefix."
}

variable "rejected_expiration_days" {
  type        = number
  description = "Days after which rejects reports under rejected/ expire."
  default     = 30
}

variable "noncurrent_version_expiration_days" {
  type        = number
  description = "Days after which superseded object versions in the catalog bucket expire."
  default     = 30
}

variable "access_log_expiration_days" {
  type        = number
  description = "Days to keep S3 server access logs (and exported CloudWatch logs) in the log bucket."
  default     = 365
}

variable "force_destroy" {
  type        = bool
  description = "Allow `terraform destroy` to delete non-empty buckets. Keep false outside throwaway environments."
  default     = false
}

variable "table_deletion_protection" {
  type        = bool
  description = "Protect the DynamoDB table from deletion (true in prod)."
  default     = true
}

variable "kms_deletion_window_in_days" {
  type        = number
  description = "Waiting period before the data key is deleted after it is scheduled for deletion."
  default     = 30
}
