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
  description = "How many commit images each repository keeps; older ones expire (release images are counted apart)."
  type        = number
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
}

variable "release_images_kept" {
  description = "How many release images (tags X.Y.Z, which prod pins) each repository keeps; counted apart from commit images."
  type        = number
}

variable "replicate_to_accounts" {
  description = "Accounts whose registries (same region) receive every mlops/* push to this one: set in the CI account."
  type        = list(string)
}

variable "replicate_from_accounts" {
  description = "Accounts allowed to replicate mlops/* into this registry: the CI account, set in the others."
  type        = list(string)
}
