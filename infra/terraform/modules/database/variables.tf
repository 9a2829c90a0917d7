variable "name" {
  type        = string
  description = "Name prefix shared by every resource of the service."
  default     = "ludex"
}

variable "environment" {
  type        = string
  description = "Environment name (dev, staging, prod)."
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

variable "replica_count" {
  type        = number
  description = "Number of read replicas of the primary (0 for none); their endpoints are in db_instance_replica_addresses."
  default     = 0
}

variable "replica_instance_class" {
  type        = string
  description = "Instance class of the read replicas; null uses instance_class."
  default     = null
}

variable "alarm_topic_arn" {
  type        = string
  description = "SNS topic the database alarms notify."
}

variable "slow_statement_ms" {
  type        = number
  description = "Statements slower than this many milliseconds are logged with their duration (log_min_duration_statement) and counted as slow."
  default     = 500
}

variable "slow_statements_threshold" {
  type        = number
  description = "Slow statements per 5 minutes above which the slow-query alarm fires."
  default     = 10
}

variable "cpu_threshold_percent" {
  type        = number
  description = "Average CPU (%) over 15 minutes above which the CPU alarm fires."
  default     = 80
}

variable "free_storage_threshold_gib" {
  type        = number
  description = "Free storage (GiB) below which the storage alarm fires."
  default     = 2
}

variable "connections_threshold" {
  type        = number
  description = "Connections above which the connections alarm fires (db.t4g.micro allows about 80)."
  default     = 60
}

variable "replica_lag_threshold_seconds" {
  type        = number
  description = "Replica lag (seconds) above which a replica's alarm fires."
  default     = 60
}
