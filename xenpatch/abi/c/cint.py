"""C integer types and constants of a target: conversions and literals (C99 6.3.1, 6.4.4).

Shared by the macro evaluator (``cexpr``) and the constant expressions of
declarations (``declare``): array sizes, bit-field widths, enumerators.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .cdefs import IntType

INT = IntType(4, True)
UINT = IntType(4, False)
LLONG = IntType(8, True)
ULLONG = IntType(8, False)


class NotConstant(Exception):
    """The tokens are not an integer constant expression (or expansion failed)."""


@dataclass(frozen=True)
class Value:
    """An integer value with its C type."""

    value: int
    type: IntType


def wrap(value: int, typ: IntType) -> int:
    """VALUE converted to TYP (C99 6.3.1.3: modulo 2**bits; signed as two's complement, as gcc)."""
    value &= (1 << typ.bits) - 1
    if typ.signed and value >> (typ.bits - 1):
        value -= 1 << typ.bits
    return value


def promote(typ: IntType) -> IntType:
    """Integer promotions (C99 6.3.1.1): types narrower than int become int."""
    return INT if typ.size < 4 else typ


def common_type(a: IntType, b: IntType) -> IntType:
    """Usual arithmetic conversions (C99 6.3.1.8) for integer types, by size and signedness.

    Equal sizes: unsigned if either is; otherwise the wider type, which (being
    wider) represents every value of the narrower one whatever its signedness."""
    a, b = promote(a), promote(b)
    if a.size == b.size:
        return IntType(a.size, a.signed and b.signed)
    return a if a.size > b.size else b


_SUFFIX = re.compile(r"(?i)(u?)(ll|l)?(u?)$")


def integer_constant(text: str, long_size: int) -> Value:
    """The value and type of an integer constant (C99 6.4.4.1, with gcc's 0b prefix)."""
    body, suffix = _split_suffix(text)
    low = body.lower()
    try:
        if low.startswith(("0x", "0b")):
            value = int(low[2:], 16 if low[1] == "x" else 2)
            decimal = False
        elif low.startswith("0") and len(low) > 1:
            value, decimal = int(low[1:], 8), False
        else:
            value, decimal = int(low, 10), True
    except ValueError as e:
        raise NotConstant(f"not an integer constant: {text}") from e
    unsigned = "u" in suffix
    longs = suffix.count("l")
    sizes = [4, long_size, 8][longs:] if longs < 2 else [8]
    if longs == 1:
        sizes = [long_size, 8]
    for size in sizes:
        for signed in ((False,) if unsigned else ((True,) if decimal else (True, False))):
            if value < (1 << (size * 8 - (1 if signed else 0))):
                return Value(value, IntType(size, signed))
    if value < (1 << 64):  # gcc: "integer constant is so large that it is unsigned"
        return Value(value, ULLONG)
    raise NotConstant(f"integer constant too large: {text}")


def _split_suffix(text: str) -> tuple[str, str]:
    m = _SUFFIX.search(text)
    suffix = m.group() if m else ""
    if suffix.lower().count("u") > 1 or (m and m.group(1) and m.group(3)):
        raise NotConstant(f"bad integer suffix: {text}")
    body = text[: len(text) - len(suffix)] if suffix else text
    if not body or not body[0].isdigit() or "." in body:
        raise NotConstant(f"not an integer constant: {text}")
    return body, suffix.lower()


_ESCAPES = {"n": 10, "t": 9, "r": 13, "a": 7, "b": 8, "f": 12, "v": 11, "\\": 92,
            "'": 39, '"': 34, "?": 63, "e": 27}


def char_constant(text: str, char_signed: bool) -> Value:
    """The value of a character constant (C99 6.4.4.4; multi-character ones as gcc computes them)."""
    if not text.startswith("'"):
        raise NotConstant(f"wide character constant: {text}")
    codes = _char_codes(text[1:-1])
    if not codes:
        raise NotConstant("empty character constant")
    if len(codes) == 1:
        c = codes[0] & 0xFF
        return Value(c - 256 if char_signed and c > 127 else c, INT)
    value = 0
    for c in codes:
        value = (value << 8) | (c & 0xFF)
    return Value(wrap(value, INT), INT)


def _char_codes(body: str) -> list[int]:
    codes: list[int] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            codes.append(ord(ch))
            i += 1
            continue
        nxt = body[i + 1]
        if nxt == "x":
            m = re.match(r"[0-9A-Fa-f]+", body[i + 2:])
            if not m:
                raise NotConstant("bad \\x escape")
            codes.append(int(m.group(), 16))
            i += 2 + len(m.group())
        elif nxt in "01234567":
            m = re.match(r"[0-7]{1,3}", body[i + 1:])
            assert m
            codes.append(int(m.group(), 8))
            i += 1 + len(m.group())
        elif nxt in _ESCAPES:
            codes.append(_ESCAPES[nxt])
            i += 2
        else:
            raise NotConstant(f"unknown escape \\{nxt}")
    return codes
