# MLflow's backend store: a private, encrypted PostgreSQL instance. Its password is
# generated ephemerally and written only to the database and to the Secrets Manager
# secret mlops/<env>/mlflow-db (write-only arguments), which the MLflow ExternalSecret
# reads; it never lands in a file, a plan or the state.

data "aws_partition" "current" {}

locals {
  identifier  = "${var.name_prefix}-mlflow"
  secret_name = "mlops/${var.env}/mlflow-db"
  database    = "mlflow"
  username    = "mlflow"
  family      = "postgres${split(".", var.engine_version)[0]}"
}

module "key" {
  source = "../kms-key"

  alias       = local.identifier
  description = "${local.identifier}: storage, Performance Insights and the connection secret"
  tags        = var.tags
}

# ---------------------------------------------------------------- network

resource "aws_db_subnet_group" "this" {
  name       = local.identifier
  subnet_ids = var.subnet_ids
  tags       = var.tags
}

resource "aws_security_group" "db" {
  name_prefix = "${local.identifier}-"
  description = "PostgreSQL for MLflow: 5432 from the cluster nodes only"
  vpc_id      = var.vpc_id
  tags        = var.tags

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "clients" {
  # count, not for_each: the ids are only known after the cluster exists.
  count = length(var.client_security_group_ids)

  security_group_id            = aws_security_group.db.id
  description                  = "PostgreSQL from the EKS nodes"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = var.client_security_group_ids[count.index]
}

# ---------------------------------------------------------------- parameters

resource "aws_db_parameter_group" "this" {
  name_prefix = "${local.identifier}-"
  family      = local.family
  description = "MLflow PostgreSQL: TLS only, slow statements logged"

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }

  parameter {
    name  = "log_min_duration_statement"
    value = "1000"
  }

  parameter {
    name  = "log_connections"
    value = "1"
  }

  parameter {
    name  = "log_statement"
    value = "ddl"
  }

  tags = var.tags

  lifecycle {
    create_before_destroy = true
  }
}

# ---------------------------------------------------------------- monitoring role

data "aws_iam_policy_document" "monitoring_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "monitoring" {
  name               = "${local.identifier}-monitoring"
  assume_role_policy = data.aws_iam_policy_document.monitoring_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "monitoring" {
  role       = aws_iam_role.monitoring.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

# ---------------------------------------------------------------- instance

ephemeral "random_password" "master" {
  length = 40
  # RDS refuses / " @ and spaces; the URI form below needs no escaping without them.
  override_special = "!#%^*-_=+"
}

resource "aws_db_instance" "this" {
  #checkov:skip=CKV_AWS_157:multi_az is per environment: prod true, dev false to halve cost (tests/terraform checks prod)
  #checkov:skip=CKV_AWS_293:deletion_protection is per environment: prod true, dev false so a dev stack can be torn down (tests/terraform checks prod)
  identifier     = local.identifier
  engine         = "postgres"
  engine_version = var.engine_version
  instance_class = var.instance_class

  db_name  = local.database
  username = local.username
  # Write-only: sent to RDS on create and whenever password_version changes.
  password_wo         = ephemeral.random_password.master.result
  password_wo_version = var.password_version

  allocated_storage     = var.allocated_storage_gib
  max_allocated_storage = var.max_allocated_storage_gib
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = module.key.arn

  db_subnet_group_name   = aws_db_subnet_group.this.name
  vpc_security_group_ids = [aws_security_group.db.id]
  publicly_accessible    = false
  multi_az               = var.multi_az
  parameter_group_name   = aws_db_parameter_group.this.name

  iam_database_authentication_enabled = true

  backup_retention_period   = var.backup_retention_days
  backup_window             = "07:00-08:00"
  maintenance_window        = "sun:08:30-sun:09:30"
  copy_tags_to_snapshot     = true
  deletion_protection       = var.deletion_protection
  skip_final_snapshot       = false
  final_snapshot_identifier = "${local.identifier}-final"

  auto_minor_version_upgrade = true
  apply_immediately          = false

  enabled_cloudwatch_logs_exports       = ["postgresql", "upgrade"]
  monitoring_interval                   = 60
  monitoring_role_arn                   = aws_iam_role.monitoring.arn
  performance_insights_enabled          = true
  performance_insights_kms_key_id       = module.key.arn
  performance_insights_retention_period = 7

  tags = var.tags
}

# ---------------------------------------------------------------- connection secret

resource "aws_secretsmanager_secret" "connection" {
  #checkov:skip=CKV2_AWS_57:rotation is a password_version bump (terraform writes DB and secret together); a rotation Lambda would race the write-only password
  name        = local.secret_name
  description = "MLflow backend store: username, password, host, port, dbname and a postgresql:// URI"
  kms_key_id  = module.key.arn
  tags        = var.tags
}

resource "aws_secretsmanager_secret_version" "connection" {
  secret_id = aws_secretsmanager_secret.connection.id
  secret_string_wo = jsonencode({
    username = local.username
    password = ephemeral.random_password.master.result
    host     = aws_db_instance.this.address
    port     = aws_db_instance.this.port
    dbname   = local.database
    uri      = "postgresql://${local.username}:${ephemeral.random_password.master.result}@${aws_db_instance.this.address}:${aws_db_instance.this.port}/${local.database}?sslmode=require"
  })
  secret_string_wo_version = var.password_version
}
