"""Kubernetes resource quantities as the API server parses them (`500m`, `6Gi`; not `500mm`, `6GB`).

A leaf both the schema checks (a CRD field that is a quantity) and the API rules (MLOPS040) read,
so the two report one wording.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

# k8s.io/apimachinery pkg/api/resource/quantity.go (parseQuantityString) and suffix.go
# (newSuffixer): a signed decimal number, then one suffix: binary SI, decimal SI, or an
# exponent `e`/`E` followed by an integer. `E` alone is exa.
_QUANTITY = re.compile(r"([+-]?)(\d+\.?\d*|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?")
QUANTITY_REGEX = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
"""The expression the API server's error message quotes (quantity.go, ErrFormatWrong)."""

_SUFFIX_FACTORS: dict[str, Decimal] = {
    **{s: Decimal(1024) ** (i + 1) for i, s in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))},
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}


def parse_quantity(value: Any) -> Decimal | None:
    """Return the value of a Kubernetes quantity (`500m` -> 0.5), or None when the API server refuses it.

    Follows k8s.io/apimachinery pkg/api/resource/quantity.go `ParseQuantity`: a YAML number is
    a quantity without a suffix.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return Decimal(str(value))
    if not isinstance(value, str):
        return None
    match = _QUANTITY.fullmatch(value)
    if not match:
        return None
    sign, number, suffix = match.group(1), match.group(2), match.group(3) or ""
    try:
        amount = Decimal(number)
    except InvalidOperation:
        return None
    if suffix in _SUFFIX_FACTORS:
        amount *= _SUFFIX_FACTORS[suffix]
    else:
        amount = amount.scaleb(int(suffix[1:]))
    return -amount if sign == "-" else amount


def not_a_quantity(value: Any) -> str:
    """MLOPS040's message for a value `parse_quantity` refuses, wherever the field is."""
    return (
        f"{value!r} is not a Kubernetes quantity: the API server refuses it (it must match "
        f"{QUANTITY_REGEX} with one suffix of Ki Mi Gi Ti Pi Ei, n u m k M G T P E, or e<exponent>)"
    )
