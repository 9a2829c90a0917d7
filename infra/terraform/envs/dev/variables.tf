variable "region" {
  type        = string
  description = "AWS region of the environment; every run passes it (TF_VAR_region from the repository variable AWS_REGION)."
}

variable "github_repository" {
  type        = string
  description = "GitHub repository (owner/name) whose release job may assume the deploy role; every run passes it (TF_VAR_github_repository)."
}

variable "api_image_uri" {
  type        = string
  description = "API image to create the function from (<ecr_repository_url>:<tag>); owned by the release, see docs/deploy.md for the first push."
}

variable "ingest_package_path" {
  type        = string
  description = "Path to the ingest function ZIP, relative to this directory; owned by the release."
  default     = "../../../../target/lambda/ludex-ingest-lambda/bootstrap.zip"
}
