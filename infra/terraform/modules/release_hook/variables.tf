variable "name" {
  type        = string
  description = "Name prefix shared by every resource of the service."
  default     = "ludex"
}

variable "environment" {
  type        = string
  description = "Environment name (dev, staging, prod)."
}

variable "api_function_name" {
  type        = string
  description = "Name of the API function the hook smoke-tests."
}

variable "api_function_arn" {
  type        = string
  description = "Unqualified ARN of the API function; the hook may invoke its versions."
}

variable "ingest_function_name" {
  type        = string
  description = "Name of the ingest function the hook smoke-tests."
}

variable "ingest_function_arn" {
  type        = string
  description = "Unqualified ARN of the ingest function; the hook may invoke its versions."
}

variable "release_alarm_names" {
  type        = map(list(string))
  description = "Release alarms of each function (function name -> alarm names) that the hook points at the new version."
}

variable "bucket_name" {
  type        = string
  description = "Catalog bucket; the ingest smoke test uploads its one-line file under uploads/canary/."
}

variable "bucket_arn" {
  type        = string
  description = "ARN of the catalog bucket."
}

variable "kms_key_arn" {
  type        = string
  description = "ARN of the data key (bucket, parameter, log group, function settings)."
}

variable "permissions_boundary_arn" {
  type        = string
  description = "Permissions boundary every role of the environment carries (bootstrap, modules/ci_roles)."
}

variable "log_retention_in_days" {
  type        = number
  description = "Retention of the hook's log group, in days."
  default     = 30
}

variable "timeout" {
  type        = number
  description = "Timeout of one hook run in seconds; it covers one smoke test of the new version (an ingest included)."
  default     = 300
}
