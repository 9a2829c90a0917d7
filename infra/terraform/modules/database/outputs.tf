output "db_instance_address" {
  description = "Host name of the PostgreSQL instance."
  value       = aws_db_instance.postgres.address
}

output "db_instance_port" {
  description = "Port of the PostgreSQL instance."
  value       = aws_db_instance.postgres.port
}

output "db_instance_store_url" {
  description = "LUDEX_STORE value for the functions (no password: it is read from the secret)."
  value       = "postgres://${local.username}@${aws_db_instance.postgres.address}:${local.port}/${local.database_name}"
}

output "db_instance_master_user_secret_arn" {
  description = "ARN of the Secrets Manager secret with the master password (LUDEX_STORE_PASSWORD_SECRET_ARN)."
  value       = aws_db_instance.postgres.master_user_secret[0].secret_arn
}

output "db_security_group_id" {
  description = "ID of the database security group."
  value       = aws_security_group.database.id
}

output "db_instance_replica_addresses" {
  description = "Host names of the read replicas (empty without replicas)."
  value       = aws_db_instance.replica[*].address
}
