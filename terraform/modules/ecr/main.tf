# One ECR repository per image, mlops/<image>: tags are immutable (a prod overlay that
# pins a tag gets the same bytes forever), every push is scanned, images are encrypted
# with a customer key, and old images expire.

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
        description  = "Keep the most recent tagged images"
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
