variable "name" {
  type        = string
  description = "Name prefix shared by every resource of the service."
  default     = "ludex"
}

variable "environment" {
  type        = string
  description = "Environment name (dev, staging, prod)."
}

variable "function_name" {
  type        = string
  description = "Name of the API function."
}

variable "function_alias_name" {
  type        = string
  description = "Alias of the API function that API Gateway invokes (live)."
}

variable "function_alias_arn" {
  type        = string
  description = "ARN of that alias; the integration targets the alias, never the unqualified function."
}

variable "throttling_rate_limit" {
  type        = number
  description = "Steady-state requests per second allowed on the $default stage."
  default     = 50
}

variable "throttling_burst_limit" {
  type        = number
  description = "Burst of requests allowed above the steady rate on the $default stage."
  default     = 100
}

variable "cors_allowed_origins" {
  type        = list(string)
  description = "Browser origins allowed to call the API; empty turns CORS off."
  default     = []
}

variable "log_retention_in_days" {
  type        = number
  description = "Retention of the access-log group, in days."
  default     = 30
}

variable "kms_key_arn" {
  type        = string
  description = "ARN of the KMS key that encrypts the access-log group."
}

variable "domain_name" {
  type        = string
  description = "Optional custom domain (for example api.example.com); null serves only the execute-api URL."
  default     = null
}

variable "certificate_arn" {
  type        = string
  description = "ARN of an ACM certificate for domain_name, in the same region as the API; required when domain_name is set."
  default     = null
}
