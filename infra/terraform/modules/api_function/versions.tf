terraform {
  # 1.11: write-only arguments (the session secret, value_wo).
  required_version = ">= 1.11"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
  }
}
