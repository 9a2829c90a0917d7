output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.main.id
}

output "vpc_cidr_block" {
  description = "IPv4 range of the VPC."
  value       = aws_vpc.main.cidr_block
}

output "private_subnet_ids" {
  description = "IDs of the private subnets (functions, database)."
  value       = aws_subnet.private[*].id
}

output "public_subnet_ids" {
  description = "IDs of the public subnets (NAT gateway when enabled)."
  value       = aws_subnet.public[*].id
}

output "security_group_functions_id" {
  description = "ID of the security group attached to both functions."
  value       = aws_security_group.functions.id
}

output "vpc_endpoint_ids" {
  description = "IDs of the gateway and interface endpoints, keyed by service."
  value = merge(
    { for service, endpoint in aws_vpc_endpoint.gateway : service => endpoint.id },
    { for service, endpoint in aws_vpc_endpoint.interface : service => endpoint.id },
  )
}
