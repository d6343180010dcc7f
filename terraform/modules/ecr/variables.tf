variable "images" {
  description = "Images of this repository (folders under images/); each gets the ECR repository mlops/<image>."
  type        = list(string)
}

variable "name_prefix" {
  description = "Prefix of this environment's names, mlops-<env>, used for the KMS alias."
  type        = string
}

variable "untagged_expiration_days" {
  description = "Days an untagged image (a layer left by a re-push) is kept."
  type        = number
}

variable "tagged_images_kept" {
  description = "How many tagged images each repository keeps; older ones expire (prod pins digests of recent ones)."
  type        = number
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
}
