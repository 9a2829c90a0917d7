variable "name" {
  type        = string
  description = "Name prefix shared by every resource of the service."
  default     = "ludex"
}

variable "environment" {
  type        = string
  description = "Environment name (dev, staging, prod); functions are named <name>-<environment>-ingest and <name>-<environment>-api."
}

# --- Code ---------------------------------------------------------------------------

variable "ingest_package_path" {
  type        = string
  description = "Path to the ingest function ZIP (target/lambda/ludex-ingest-lambda/bootstrap.zip)."
}

variable "api_image_uri" {
  type        = string
  description = "Image of the API function in its ECR repository (<ecr_repository_url>:<tag>)."
}

# --- Functions ------------------------------------------------------------------------

variable "ingest_memory_size" {
  type        = number
  description = "Memory of the ingest function in MB."
  default     = 512
}

variable "ingest_timeout" {
  type        = number
  description = "Timeout of the ingest function in seconds."
  default     = 300
}

variable "ingest_reserved_concurrent_executions" {
  type        = number
  description = "Reserved concurrency of the ingest function (-1 for unreserved)."
  default     = 10
}

variable "api_memory_size" {
  type        = number
  description = "Memory of the API function in MB; at least 512 for covers of 40 megapixels (BENCHMARKS.md, \"Covers\")."
  default     = 512
}

variable "api_timeout" {
  type        = number
  description = "Timeout of the API function in seconds."
  default     = 29
}

variable "api_reserved_concurrent_executions" {
  type        = number
  description = "Reserved concurrency of the API function (-1 for unreserved)."
  default     = 50
}

variable "rust_log" {
  type        = string
  description = "RUST_LOG filter for both functions."
  default     = "info"
}

variable "reads_require_key" {
  type        = bool
  description = "Require an API key for reads as well as writes (LUDEX_READS_REQUIRE_KEY)."
  default     = false
}

variable "cors_allowed_origins" {
  type        = list(string)
  description = "Browser origins allowed to call the API; empty turns CORS off."
  default     = []
}

variable "log_retention_in_days" {
  type        = number
  description = "Retention of every log group of the environment, in days."
  default     = 30
}

# --- HTTP API -------------------------------------------------------------------------

variable "throttling_rate_limit" {
  type        = number
  description = "Steady-state requests per second allowed by API Gateway."
  default     = 50
}

variable "throttling_burst_limit" {
  type        = number
  description = "Burst of requests allowed by API Gateway above the steady rate."
  default     = 100
}

variable "domain_name" {
  type        = string
  description = "Optional custom domain of the API; null serves only the execute-api URL."
  default     = null
}

variable "certificate_arn" {
  type        = string
  description = "ACM certificate ARN for domain_name (same region as the API)."
  default     = null
}

# --- Data -------------------------------------------------------------------------------

variable "table_deletion_protection" {
  type        = bool
  description = "Protect the DynamoDB table from deletion (true in prod)."
  default     = true
}

variable "force_destroy" {
  type        = bool
  description = "Let `terraform destroy` empty and delete the buckets and the image repository (throwaway environments only)."
  default     = false
}

variable "enable_vpc" {
  type        = bool
  description = "Run the functions in private subnets of a new VPC (implied by enable_rds)."
  default     = false
}

variable "enable_nat_gateway" {
  type        = bool
  description = "Give the private subnets a NAT gateway for outbound traffic that has no VPC endpoint."
  default     = false
}

variable "enable_rds" {
  type        = bool
  description = "Use RDS PostgreSQL as the store instead of DynamoDB (also turns on enable_vpc)."
  default     = false
}

variable "db_instance_class" {
  type        = string
  description = "RDS instance class when enable_rds is true."
  default     = "db.t4g.micro"
}

variable "db_multi_az" {
  type        = bool
  description = "Keep a standby database in a second availability zone (true in prod)."
  default     = false
}

variable "db_replica_count" {
  type        = number
  description = "Read replicas of the database when enable_rds is true (0 for none)."
  default     = 0
}

variable "db_deletion_protection" {
  type        = bool
  description = "Refuse to delete the database instance (true in prod)."
  default     = true
}

# --- Operations ---------------------------------------------------------------------------

variable "alarm_email" {
  type        = string
  description = "Optional e-mail address that receives alarm notifications."
  default     = null
}

variable "enable_log_export" {
  type        = bool
  description = "Export the functions' and the API's logs to the log bucket through Kinesis Data Firehose."
  default     = false
}

variable "deployment_config_name" {
  type        = string
  description = "CodeDeploy traffic-shifting configuration for both functions."
  default     = "CodeDeployDefault.LambdaCanary10Percent5Minutes"
}

# --- CI/CD ------------------------------------------------------------------------------

variable "github_repository" {
  type        = string
  description = "GitHub repository (owner/name) whose workflows may deploy; null creates no GitHub roles."
  default     = null
}

variable "github_deploy_branches" {
  type        = list(string)
  description = "Branches allowed to assume the deploy role outside a GitHub environment (usually none)."
  default     = []
}

variable "github_deploy_environments" {
  type        = list(string)
  description = "GitHub environments allowed to assume the deploy role."
  default     = []
}

variable "state_bucket_name" {
  type        = string
  description = "Name of the Terraform state bucket (bootstrap output bucket_name)."
  default     = null
}

variable "state_key" {
  type        = string
  description = "Key of this environment's state object; must match the backend block."
  default     = null
}

variable "state_kms_key_arn" {
  type        = string
  description = "ARN of the state bucket's KMS key (bootstrap output kms_key_arn)."
  default     = null
}

variable "history_retention" {
  type = object({
    keep_versions = optional(number)
    keep_days     = optional(number)
  })
  description = "How much of every game's history the store keeps: the newest keep_versions earlier versions, those replaced in the last keep_days days (DynamoDB: TTL on expires_at); null keeps all (docs/operations.md)."
  default     = {}
}
