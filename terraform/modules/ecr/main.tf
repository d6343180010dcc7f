# One ECR repository per image, mlops/<image>: tags are immutable (a prod overlay that
# pins a tag gets the same bytes forever), every push is scanned, images are encrypted
# with a customer key, and old commit images expire while release images (X.Y.Z) stay.
# Build caches live beside them in mlops-cache/<image>, whose one tag (:buildcache) every
# build rewrites: an IMMUTABLE repository would refuse the second build.
# CI pushes to one registry (the CI account's); that registry replicates mlops/* to the
# accounts in replicate_to_accounts, whose registries allow it (replicate_from_accounts).

module "key" {
  source = "../kms-key"

  alias       = "${var.name_prefix}-ecr"
  description = "${var.name_prefix}: ECR repositories"
  tags        = var.tags
}

resource "aws_ecr_repository" "image" {
  for_each = toset(var.images)

  name                 = "mlops/${each.key}"
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = module.key.arn
  }

  tags = var.tags
}

resource "aws_ecr_lifecycle_policy" "image" {
  for_each = aws_ecr_repository.image

  repository = each.value.name
  # An image matched by a rule's tags is never expired by a lower-priority rule (ECR
  # lifecycle evaluation), so release tags get their own count and commits cannot push
  # them out (mlops validate MLOPS027).
  policy = jsonencode({
    rules = [
      {
        rulePriority = 1
        description  = "Expire untagged images"
        selection = {
          tagStatus   = "untagged"
          countType   = "sinceImagePushed"
          countUnit   = "days"
          countNumber = var.untagged_expiration_days
        }
        action = { type = "expire" }
      },
      {
        rulePriority = 2
        description  = "Keep release images (X.Y.Z), which prod pins"
        selection = {
          tagStatus      = "tagged"
          tagPatternList = ["*.*.*"]
          countType      = "imageCountMoreThan"
          countNumber    = var.release_images_kept
        }
        action = { type = "expire" }
      },
      {
        rulePriority = 3
        description  = "Keep the most recent commit images"
        selection = {
          tagStatus      = "tagged"
          tagPatternList = ["*"]
          countType      = "imageCountMoreThan"
          countNumber    = var.tagged_images_kept
        }
        action = { type = "expire" }
      },
    ]
  })
}

resource "aws_ecr_repository" "cache" {
  #checkov:skip=CKV_AWS_51:BuildKit rewrites the :buildcache tag on every build; the image repositories stay IMMUTABLE (MLOPS028)
  #checkov:skip=CKV_AWS_163:cache layers are never run; the images built from them are scanned on push in mlops/<image>
  for_each = toset(var.images)

  name = "mlops-cache/${each.key}"
  # BuildKit rewrites :buildcache on every build (mlops validate MLOPS028).
  image_tag_mutability = "MUTABLE"

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = module.key.arn
  }

  tags = var.tags
}

resource "aws_ecr_lifecycle_policy" "cache" {
  for_each = aws_ecr_repository.cache

  repository = each.value.name
  policy = jsonencode({
    rules = [
      {
        rulePriority = 1
        description  = "Expire cache manifests a newer build replaced"
        selection = {
          tagStatus   = "untagged"
          countType   = "sinceImagePushed"
          countUnit   = "days"
          countNumber = var.untagged_expiration_days
        }
        action = { type = "expire" }
      },
    ]
  })
}

data "aws_region" "current" {}

data "aws_caller_identity" "current" {}

# The CI account's registry copies every mlops/* push (not the caches) to the other
# accounts, so prod pulls release images from its own registry.
resource "aws_ecr_replication_configuration" "to_accounts" {
  count = length(var.replicate_to_accounts) > 0 ? 1 : 0

  replication_configuration {
    rule {
      dynamic "destination" {
        for_each = var.replicate_to_accounts
        content {
          region      = data.aws_region.current.name
          registry_id = destination.value
        }
      }
      repository_filter {
        filter      = "mlops/"
        filter_type = "PREFIX_MATCH"
      }
    }
  }
}

resource "aws_ecr_registry_policy" "replication_from_accounts" {
  count = length(var.replicate_from_accounts) > 0 ? 1 : 0

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "ReplicationFromTheCiAccount"
        Effect    = "Allow"
        Principal = { AWS = [for account in var.replicate_from_accounts : "arn:aws:iam::${account}:root"] }
        Action    = ["ecr:CreateRepository", "ecr:ReplicateImage"]
        Resource  = "arn:aws:ecr:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:repository/mlops/*"
      },
    ]
  })
}
