terraform {
  # 1.10 is the first release with S3-native state locking (use_lockfile); 1.11 the first with
  # write-only arguments (the session secret).
  required_version = ">= 1.11"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
  }

  # Partial configuration: the bucket, region and KMS key come from
  # `terraform init -backend-config=...` (see docs/deploy.md), so no account-
  # specific name is committed. The lock is a staging/terraform.tfstate.tflock
  # object next to the state: no DynamoDB lock table.
  backend "s3" {
    key          = "staging/terraform.tfstate"
    encrypt      = true
    use_lockfile = true
  }
}
