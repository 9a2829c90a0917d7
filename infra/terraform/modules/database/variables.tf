variable "name" {
  type        = string
  description = "Name prefix shared by every resource of the service."
  default     = "ludex"
}

variable "environment" {
  type        = string
  description = "Environment name (dev, prod)."
}

variable "vpc_id" {
  type        = string
  description = "VPC that holds the database."
}

variable "subnet_ids" {
  type        = list(string)
  description = "Private subnets (two availability zones) for the DB subnet group."
}

variable "client_security_group_id" {
  type        = string
  description = "Security group of the functions; the only source allowed to reach port 5432."
}

variable "kms_key_arn" {
  type        = string
  description = "ARN of the KMS key for storage, Performance Insights, logs and the master password secret."
}

variable "instance_class" {
  type        = string
  description = "RDS instance class (arm64 Graviton classes are cheapest per vCPU)."
  default     = "db.t4g.micro"
}

variable "allocated_storage" {
  type        = number
  description = "Initial storage in GiB."
  default     = 20
}

variable "max_allocated_storage" {
  type        = number
  description = "Upper bound in GiB for storage autoscaling."
  default     = 100
}

variable "multi_az" {
  type        = bool
  description = "Keep a synchronous standby in a second availability zone (true in prod; doubles the instance cost)."
  default     = false
}

variable "backup_retention_period" {
  type        = number
  description = "Days of automated backups and point-in-time recovery."
  default     = 7
}

variable "deletion_protection" {
  type        = bool
  description = "Refuse to delete the instance (true in prod)."
  default     = true
}

variable "log_retention_in_days" {
  type        = number
  description = "Retention of the exported PostgreSQL log groups, in days."
  default     = 30
}

variable "performance_insights_enabled" {
  type        = bool
  description = "Collect Performance Insights (7 days free retention, KMS-encrypted)."
  default     = true
}

variable "permissions_boundary_arn" {
  type        = string
  description = "Permissions boundary every role of the environment carries (bootstrap, modules/ci_roles)."
}
