variable "name" {
  type        = string
  description = "Name prefix shared by every resource of the service."
  default     = "ludex"
}

variable "environment" {
  type        = string
  description = "Environment name (dev, staging, prod)."
}

variable "ingest_function_name" {
  type        = string
  description = "Name of the ingest function."
}

variable "api_function_name" {
  type        = string
  description = "Name of the API function."
}

variable "http_api_id" {
  type        = string
  description = "ID of the HTTP API (ApiId metric dimension)."
}

variable "dlq_name" {
  type        = string
  description = "Name of the ingest dead-letter queue."
}

variable "kms_key_arn" {
  type        = string
  description = "ARN of the KMS key that encrypts the alarm topic and the log export stream."
}

variable "alarm_email" {
  type        = string
  description = "Optional e-mail address subscribed to the alarm topic (the recipient must confirm); null adds no subscription."
  default     = null
}

variable "api_duration_p99_threshold_ms" {
  type        = number
  description = "API function p99 duration (ms) above which the alarm fires."
  default     = 1000
}

variable "ingest_duration_p99_threshold_ms" {
  type        = number
  description = "Ingest function p99 duration (ms) above which the alarm fires."
  default     = 120000
}

variable "api_5xx_threshold" {
  type        = number
  description = "Number of 5xx responses per minute above which the API alarm fires."
  default     = 5
}

variable "ingest_rejected_threshold" {
  type        = number
  description = "Number of rejected records per 5 minutes above which the ingest alarm fires."
  default     = 100
}

variable "enable_log_export" {
  type        = bool
  description = "Also export the log groups in log_group_names to S3 through a subscription filter and Kinesis Data Firehose."
  default     = false
}

variable "log_group_names" {
  type        = list(string)
  description = "Log groups to export when enable_log_export is true."
  default     = []
}

variable "log_export_bucket_arn" {
  type        = string
  description = "ARN of the bucket that receives exported logs under cloudwatch-logs/; required when enable_log_export is true."
  default     = null
}

variable "log_retention_in_days" {
  type        = number
  description = "Retention of the Firehose error log group, in days."
  default     = 30
}

variable "permissions_boundary_arn" {
  type        = string
  description = "Permissions boundary every role of the environment carries (bootstrap, modules/ci_roles)."
}

variable "api_function_alias_name" {
  type        = string
  description = "Alias of the API function that CodeDeploy shifts (live)."
  default     = "live"
}

variable "ingest_function_alias_name" {
  type        = string
  description = "Alias of the ingest function that CodeDeploy shifts (live)."
  default     = "live"
}

variable "api_function_live_version" {
  type        = string
  description = "Version the API function's alias serves now (read back from the alias); the release alarms watch it between deployments."
}

variable "ingest_function_live_version" {
  type        = string
  description = "Version the ingest function's alias serves now (read back from the alias); the release alarms watch it between deployments."
}

variable "release_min_invocations" {
  type        = number
  description = "Fewest invocations (or requests) of a version in a period before its release alarms judge it."
  default     = 20
}

variable "release_error_rate_threshold" {
  type        = number
  description = "Share of a version's invocations that may fail (0-1) before its release is rolled back."
  default     = 0.05
}

variable "release_5xx_rate_threshold" {
  type        = number
  description = "Share of a version's API requests that may get a 5xx answer (0-1) before its release is rolled back."
  default     = 0.05
}
