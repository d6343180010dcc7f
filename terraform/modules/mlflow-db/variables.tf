variable "name_prefix" {
  description = "Prefix of every name, mlops-<env>; the instance is <prefix>-mlflow."
  type        = string
}

variable "env" {
  description = "Environment (dev, prod); the connection secret is mlops/<env>/mlflow-db."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the database security group."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the DB subnet group (one per AZ)."
  type        = list(string)
}

variable "client_security_group_ids" {
  description = "Security groups allowed to connect on 5432 (the EKS cluster security group, on every node)."
  type        = list(string)
}

variable "engine_version" {
  description = "PostgreSQL major version; RDS applies minor versions in the maintenance window."
  type        = string
}

variable "instance_class" {
  description = "RDS instance class."
  type        = string
}

variable "allocated_storage_gib" {
  description = "Initial storage in GiB."
  type        = number
}

variable "max_allocated_storage_gib" {
  description = "Storage autoscaling ceiling in GiB."
  type        = number
}

variable "multi_az" {
  description = "Standby replica in a second AZ (prod)."
  type        = bool
}

variable "deletion_protection" {
  description = "Refuse to delete the instance (prod)."
  type        = bool
}

variable "backup_retention_days" {
  description = "Days automated backups (point-in-time recovery) are kept."
  type        = number
}

variable "password_version" {
  description = "Bump to rotate the master password: a new one is generated and written to the database and the secret."
  type        = number
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
}
