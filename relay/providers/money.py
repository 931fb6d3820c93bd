"""Amounts as integer minor units (ISO 4217 exponents), never floats."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from relay.events import Money
from relay.providers.coerce import as_str

# ISO 4217 currencies whose minor unit is not 1/100.
_EXPONENTS = {
    **dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG"), 0),
    **dict.fromkeys(("RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
}
_LIMIT = Decimal(10) ** 15


def exponent(currency: str | None) -> int:
    return _EXPONENTS.get((currency or "").upper(), 2)


def from_major(value: Any, currency: Any) -> Money | None:
    """``12.5`` BRL → ``Money(amount=1250, currency="BRL")``; None for a non-number."""
    if isinstance(value, bool) or value is None:
        return None
    code = as_str(currency)
    code = code.strip().upper() if code else None
    try:
        number = Decimal(str(value).strip()) if isinstance(value, int | float | str) else None
    except InvalidOperation:
        return None
    if number is None or not number.is_finite() or abs(number) >= _LIMIT:
        return None
    minor = (number * (Decimal(10) ** exponent(code))).quantize(Decimal(1), ROUND_HALF_UP)
    return Money(amount=int(minor), currency=code)
