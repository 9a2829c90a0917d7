variable "region" {
  type        = string
  description = "AWS region of the environment."
}

variable "name" {
  type        = string
  description = "Name prefix shared by every resource of the service."
  default     = "ludex"
}

variable "ingest_package_path" {
  type        = string
  description = "Path to the ingest function ZIP, relative to this directory."
  default     = "../../../../target/lambda/ludex-ingest-lambda/bootstrap.zip"
}

variable "api_image_uri" {
  type        = string
  description = "API image to create the function from (<ecr_repository_url>:<tag>); see docs/deploy.md for the first push."
}

variable "github_repository" {
  type        = string
  description = "GitHub repository (owner/name) allowed to deploy; null creates no GitHub roles."
  default     = null
}

variable "state_bucket_name" {
  type        = string
  description = "Terraform state bucket (bootstrap output bucket_name), so the CI roles can reach this environment's state."
  default     = null
}

variable "state_kms_key_arn" {
  type        = string
  description = "KMS key of the state bucket (bootstrap output kms_key_arn)."
  default     = null
}

variable "alarm_email" {
  type        = string
  description = "Optional e-mail address that receives alarm notifications."
  default     = null
}

variable "cors_allowed_origins" {
  type        = list(string)
  description = "Browser origins allowed to call the API; empty turns CORS off."
  default     = []
}

variable "domain_name" {
  type        = string
  description = "Optional custom domain of the API."
  default     = null
}

variable "certificate_arn" {
  type        = string
  description = "ACM certificate ARN for domain_name."
  default     = null
}

variable "enable_vpc" {
  type        = bool
  description = "Run the functions in private subnets of a new VPC."
  default     = false
}

variable "enable_rds" {
  type        = bool
  description = "Use RDS PostgreSQL instead of DynamoDB as the store (implies enable_vpc)."
  default     = false
}

variable "enable_log_export" {
  type        = bool
  description = "Export logs to the log bucket through Kinesis Data Firehose."
  default     = false
}
