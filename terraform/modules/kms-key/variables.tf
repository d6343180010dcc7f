variable "alias" {
  description = "Alias of the key without the alias/ prefix (e.g. mlops-dev-data)."
  type        = string
}

variable "description" {
  description = "What the key encrypts, shown in the KMS console."
  type        = string
}

variable "service_principals" {
  description = "Statement id -> an AWS service principal that may use the key, the actions it gets and the conditions (encryption context) that scope it."
  type = map(object({
    service = string
    actions = list(string)
    conditions = optional(list(object({
      test     = string
      variable = string
      values   = list(string)
    })), [])
  }))
  default = {}
}

variable "tags" {
  description = "Tags of the key."
  type        = map(string)
  default     = {}
}
