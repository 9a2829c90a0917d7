variable "name" {
  type        = string
  description = "Name prefix shared by every resource of the service."
  default     = "ludex"
}

variable "environment" {
  type        = string
  description = "Environment name (dev, staging, prod); the function is named <name>-<environment>-ingest."
}

variable "package_path" {
  type        = string
  description = "Path to the ZIP built by `cargo lambda build --release --arm64 --output-format zip --bin ludex-ingest-lambda` (target/lambda/ludex-ingest-lambda/bootstrap.zip). Used when the function is created; later code releases go through CodeDeploy."
}

variable "memory_size" {
  type        = number
  description = "Memory in MB; CPU share scales with it, so parsing large uploads gets faster up to about 1769 MB (one full vCPU)."
  default     = 512
}

variable "timeout" {
  type        = number
  description = "Maximum run time of one invocation in seconds (at most 900)."
  default     = 300
}

variable "reserved_concurrent_executions" {
  type        = number
  description = "Upper bound on concurrent ingest invocations; protects the table from a burst of uploads. -1 means unreserved."
  default     = 10
}

variable "log_retention_in_days" {
  type        = number
  description = "Retention of the function's log group, in days."
  default     = 30
}

variable "rust_log" {
  type        = string
  description = "RUST_LOG filter for the function (for example info or ludex=debug,info)."
  default     = "info"
}

variable "maximum_retry_attempts" {
  type        = number
  description = "Retries of a failed asynchronous (S3-triggered) invocation before the event goes to the dead-letter queue (0-2)."
  default     = 2
}

variable "maximum_event_age_in_seconds" {
  type        = number
  description = "Age after which an unprocessed S3 event is sent to the dead-letter queue instead of being retried (60-21600)."
  default     = 3600
}

variable "dlq_message_retention_seconds" {
  type        = number
  description = "How long failed events stay in the dead-letter queue (at most 14 days)."
  default     = 1209600
}

variable "bucket_name" {
  type        = string
  description = "Name of the catalog bucket that receives uploads."
}

variable "bucket_arn" {
  type        = string
  description = "ARN of the catalog bucket."
}

variable "dynamodb_table_name" {
  type        = string
  description = "Name of the DynamoDB catalog table; used when postgres_store is null."
}

variable "dynamodb_table_arn" {
  type        = string
  description = "ARN of the DynamoDB catalog table."
}

variable "kms_key_arn" {
  type        = string
  description = "ARN of the data key that encrypts the bucket, table, queue, log group and function settings."
}

variable "postgres_store" {
  type = object({
    url                 = string
    password_secret_arn = string
  })
  description = "When set, the function uses this PostgreSQL store (LUDEX_STORE=url, password read from the Secrets Manager secret) instead of DynamoDB."
  default     = null
}

variable "subnet_ids" {
  type        = list(string)
  description = "Private subnets to attach the function to; empty keeps the function outside any VPC."
  default     = []
}

variable "security_group_ids" {
  type        = list(string)
  description = "Security groups of the function when subnet_ids is not empty."
  default     = []
}

variable "permissions_boundary_arn" {
  type        = string
  description = "Permissions boundary every role of the environment carries (bootstrap, modules/ci_roles)."
}

variable "history_retention" {
  type = object({
    keep_versions = optional(number)
    keep_days     = optional(number)
  })
  description = "How much of every game's history the store keeps: the newest keep_versions earlier versions, those replaced in the last keep_days days (DynamoDB: TTL on expires_at); null keeps all (docs/operations.md)."
  default     = {}
}
