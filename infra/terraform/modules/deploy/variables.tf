variable "name" {
  type        = string
  description = "Name prefix shared by every resource of the service."
  default     = "ludex"
}

variable "environment" {
  type        = string
  description = "Environment name (dev, staging, prod)."
}

variable "deployment_config_name" {
  type        = string
  description = "CodeDeploy traffic-shifting configuration for both functions' live aliases."
  default     = "CodeDeployDefault.LambdaCanary10Percent5Minutes"
}

variable "api_alarm_names" {
  type        = list(string)
  description = "CloudWatch alarms that stop and roll back an API deployment."
}

variable "ingest_alarm_names" {
  type        = list(string)
  description = "CloudWatch alarms that stop and roll back an ingest deployment."
}

variable "permissions_boundary_arn" {
  type        = string
  description = "Permissions boundary every role of the environment carries (bootstrap, modules/ci_roles)."
}

variable "hook_function_arn" {
  type        = string
  description = "ARN of the BeforeAllowTraffic hook function the deployments run (modules/release_hook)."
}
