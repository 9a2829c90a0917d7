variable "name" {
  type        = string
  description = "Name prefix shared by every resource of the service."
  default     = "ludex"
}

variable "environment" {
  type        = string
  description = "Environment name (dev, staging, prod)."
}

variable "cidr_block" {
  type        = string
  description = "IPv4 range of the VPC; split into two public and two private /20 subnets."
  default     = "10.40.0.0/16"
}

variable "interface_endpoint_services" {
  type        = list(string)
  description = "AWS services the functions reach through interface endpoints instead of a NAT gateway (the API key parameter, the store password, traces)."
  default     = ["ssm", "secretsmanager", "xray"]
}

variable "enable_nat_gateway" {
  type        = bool
  description = "Create one NAT gateway for any other outbound traffic from the private subnets (about 35 USD a month plus data)."
  default     = false
}

variable "flow_log_retention_in_days" {
  type        = number
  description = "Retention of the VPC flow log group, in days."
  default     = 30
}

variable "kms_key_arn" {
  type        = string
  description = "ARN of the KMS key that encrypts the flow log group."
}

variable "permissions_boundary_arn" {
  type        = string
  description = "Permissions boundary every role of the environment carries (bootstrap, modules/ci_roles)."
}
