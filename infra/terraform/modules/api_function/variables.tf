variable "name" {
  type        = string
  description = "Name prefix shared by every resource of the service."
  default     = "ludex"
}

variable "environment" {
  type        = string
  description = "Environment name (dev, staging, prod); the function is named <name>-<environment>-api."
}

variable "image_uri" {
  type        = string
  description = "Image to create the function from (<ecr_repository_url>:<tag> or @sha256 digest), built from infra/docker/api.Dockerfile. Later releases go through CodeDeploy."
}

variable "memory_size" {
  type        = number
  description = "Memory in MB; CPU share scales with it. A cover of 40 megapixels takes up to 250 MiB while its sizes are made: 128 MB is killed, 512 MB makes them in about 4 s (BENCHMARKS.md, \"Covers\")."
  default     = 512

  validation {
    condition     = var.memory_size >= 512
    error_message = "The API function makes cover sizes, which take up to 250 MiB: give it at least 512 MB."
  }
}

variable "timeout" {
  type        = number
  description = "Maximum run time of one request in seconds; API Gateway gives up after 30."
  default     = 29
}

variable "reserved_concurrent_executions" {
  type        = number
  description = "Upper bound on concurrent API invocations (cost and table-capacity guard). -1 means unreserved."
  default     = 50
}

variable "log_retention_in_days" {
  type        = number
  description = "Retention of the function's log group, in days."
  default     = 30
}

variable "rust_log" {
  type        = string
  description = "RUST_LOG filter for the function."
  default     = "info"
}

variable "session_secret_version" {
  type        = number
  description = "Version of the web UI session secret; raise it to draw a new secret, which signs every user out."
  default     = 1
}

variable "reads_require_key" {
  type        = bool
  description = "Require an API key for read requests too (LUDEX_READS_REQUIRE_KEY); writes always need one."
  default     = false
}

variable "cors_allowed_origins" {
  type        = list(string)
  description = "Browser origins allowed to call the API (LUDEX_CORS_ORIGINS); empty turns CORS off."
  default     = []
}

variable "ecr_keep_image_count" {
  type        = number
  description = "Number of most recent images the ECR lifecycle policy keeps (older ones cannot be rolled back to)."
  default     = 20
}

variable "force_delete" {
  type        = bool
  description = "Let `terraform destroy` delete the image repository while it still holds images (throwaway environments only)."
  default     = false
}

variable "bucket_name" {
  type        = string
  description = "Name of the catalog bucket."
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
  description = "ARN of the data key (bucket, table, parameter, repository, log group, function settings)."
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
