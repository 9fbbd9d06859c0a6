"""Placing a new flag in its family: the bit, the line, and the layout copied from the neighbours.

The ABI model says which macros form the family, their values and their
``header:line``; the header's text says how the neighbours are written
(value column, trailing or preceding comments, ``(1<<N)`` or the
``_NAME`` bit-number idiom of ``XEN_DOMCTL_CDF_*``).  Pure.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from ..abi import families
from ..abi.check import bits_text
from ..abi.model import AbiModel, Family, Macro
from ..errors import InputError
from .edit import split_lines
from .spec import ChangeSpec

PUBLIC = "xen/include/public"
_DEFINE = re.compile(r"^#define\s+(?P<name>\w+)(?P<gap>\s+)(?P<value>\S.*?)\s*(?P<comment>/\*.*)?$")
_SHIFT = re.compile(r"^(?P<pre>\(\s*1[uUlL]*\s*<<\s*)(?P<bit>\d+)(?P<post>\s*\))$")
_COMMENT_LINE = re.compile(r"^(?P<indent>\s*)/\*.*\*/\s*$")


class NameExists(InputError):
    """The new name is already defined."""


class BitUnavailable(InputError):
    """An explicit bit is taken by a member or lies in a reserved mask."""


@dataclass(frozen=True)
class FlagFamily:
    """The family as the generator needs it, merged over the arches of the model."""

    prefix: str
    header: str  # relative to xen/include/public/
    members: tuple[Macro, ...]  # single-bit members, in line order
    masks: tuple[Macro, ...]  # reserved masks (SIF_PM_MASK)
    markers: tuple[Macro, ...]  # *_MAX markers naming a member
    used: int
    reserved: int


@dataclass(frozen=True)
class FlagPlan:
    """Everything the define template and the editor need."""

    name: str
    bit: int
    path: str  # the header's path in the tree
    insert_index: int  # 0-based line the define goes before
    idiom: str  # shift | bit-number
    value_prefix: str  # "(1<<" / "(1U<<"
    value_suffix: str  # ")"
    value_column: int  # 0-based column where values start
    comment_style: str  # trailing | preceding
    comment_column: int  # trailing comments: their column
    comment_indent: str  # preceding comments: their indentation
    markers: tuple[tuple[int, str], ...]  # (0-based line, member named) to rename


def find_family(model: AbiModel, prefix: str) -> FlagFamily:
    """The flag family PREFIX of MODEL (its bits merged over all arches)."""
    fams: list[tuple[Family, dict[str, Macro]]] = [
        (a.family_map[prefix], a.macro_map) for a in model.arches if prefix in a.family_map]
    if not fams:
        raise InputError(f"{PUBLIC}: no macro family {prefix!r} in the public headers")
    family, macros = fams[0]
    if family.kind != "bits":
        raise InputError(f"{PUBLIC}: {prefix} is a family of values, not of flag bits")
    members = families.bit_members(family, macros)
    if not members:
        raise InputError(f"{PUBLIC}: family {prefix} has no single-bit members")
    masks = tuple(macros[n] for n in family.masks if n in macros and macros[n].value)
    markers = families.marker_macros(family, macros)
    used = reserved = 0
    for fam, _ in fams:
        used |= fam.used_mask or 0
        reserved |= fam.reserved_mask or 0
    for m in members:
        used |= m.value or 0
    return FlagFamily(prefix, members[0].header, tuple(members), masks, tuple(markers),
                      used, reserved)


def check_name_free(model: AbiModel, name: str) -> None:
    """NameExists naming ``file:line`` when NAME is already a macro on some arch."""
    for a in model.arches:
        m = a.macro_map.get(name)
        if m is not None:
            raise NameExists(f"{PUBLIC}/{m.header}:{m.line}: {name} is already defined")


def choose_bit(fam: FlagFamily, wanted: int | None, width: int = 32) -> int:
    """WANTED when it is free, else BitUnavailable; None: the lowest free bit."""
    if wanted is None:
        for b in range(width):
            if not (fam.used | fam.reserved) >> b & 1:
                return b
        raise BitUnavailable(f"{PUBLIC}/{fam.header}: family {fam.prefix} has no free bit")
    for m in fam.members:
        if m.value == 1 << wanted:
            raise BitUnavailable(f"{PUBLIC}/{fam.header}:{m.line}: bit {wanted} is taken by "
                                 f"{m.name} {m.expr}")
    for m in fam.masks:
        if (m.value or 0) >> wanted & 1:
            raise BitUnavailable(f"{PUBLIC}/{fam.header}:{m.line}: bit {wanted} lies in "
                                 f"{m.name} ({bits_text(m.value or 0)})")
    if fam.reserved >> wanted & 1:
        raise BitUnavailable(f"{PUBLIC}/{fam.header}: bit {wanted} is reserved in {fam.prefix}")
    if fam.used >> wanted & 1:
        raise BitUnavailable(f"{PUBLIC}/{fam.header}: bit {wanted} is taken in {fam.prefix}")
    return wanted


def _mode(values: Sequence[int], default: int) -> int:
    if not values:
        return default
    counts = Counter(values).most_common()
    best = counts[0][1]
    return min(v for v, c in counts if c == best)


def _line(lines: list[str], m: Macro, path: str) -> re.Match[str]:
    text = lines[m.line - 1].rstrip("\n") if 0 < m.line <= len(lines) else ""
    d = _DEFINE.match(text)
    if d is None or d.group("name") != m.name:
        raise InputError(f"{path}:{m.line}: expected '#define {m.name}' (the header and its "
                         "ABI model disagree)")
    return d


def plan_flag(spec: ChangeSpec, fam: FlagFamily, bit: int, text: str) -> FlagPlan:
    """Where and how the define of SPEC goes into TEXT, the family's header."""
    path = f"{PUBLIC}/{fam.header}"
    lines = split_lines(text)
    parsed = [(m, _line(lines, m, path)) for m in fam.members]
    companions = []
    for m, _ in parsed:
        i = m.line - 2
        d = _DEFINE.match(lines[i].rstrip("\n")) if i >= 0 else None
        if d and d.group("name") == f"_{m.name}":
            companions.append((i, d))
    columns = [d.start("value") for _, d in parsed] + [d.start("value") for _, d in companions]
    value_column = _mode(columns, 8 + len(spec.name) + 1)
    trailing = [d.start("comment") for _, d in parsed if d.group("comment")]
    style = "trailing" if len(trailing) * 2 >= len(parsed) else "preceding"
    last, last_d = parsed[-1]
    idiom = spec.idiom
    if idiom == "auto":
        idiom = "bit-number" if f"_{last.name}" in last_d.group("value") else "shift"
    prefix, suffix = _value_form(parsed, idiom)
    index = last.line  # the line after the last member (0-based index)
    if style == "trailing":
        while index < len(lines) and _COMMENT_LINE.match(lines[index]) and \
                lines[index][:1].isspace():
            index += 1
    markers = tuple((mk.line - 1, last.name) for mk in fam.markers
                    if families.alias_target(mk.expr) == last.name)
    return FlagPlan(
        name=spec.name, bit=bit, path=path, insert_index=index, idiom=idiom,
        value_prefix=prefix, value_suffix=suffix, value_column=value_column,
        comment_style=style, comment_column=_mode(trailing, value_column + 8),
        comment_indent=_comment_indent(lines, last.line - 1), markers=markers)


def _value_form(parsed: Sequence[tuple[Macro, re.Match[str]]], idiom: str) -> tuple[str, str]:
    """The text around the bit, copied from the newest neighbour written the same way."""
    for m, d in reversed(parsed):
        value = d.group("value").strip()
        if idiom == "bit-number" and f"_{m.name}" in value:
            pre, _, post = value.partition(f"_{m.name}")
            return pre, post
        s = _SHIFT.match(value)
        if idiom == "shift" and s:
            return s.group("pre"), s.group("post")
    return ("(1U<<", ")")


def _comment_indent(lines: list[str], index: int) -> str:
    """The indentation of the comment line nearest above line INDEX (preceding comments)."""
    for i in range(index - 1, max(index - 6, -1), -1):
        c = _COMMENT_LINE.match(lines[i])
        if c:
            return c.group("indent")
    return ""


def wrap_words(text: str, width: int) -> tuple[str, ...]:
    """TEXT in lines of at most WIDTH characters (a longer word gets a line of its own)."""
    out: list[str] = []
    cur = ""
    for word in text.split():
        if cur and len(cur) + 1 + len(word) > width:
            out.append(cur)
            cur = word
        else:
            cur = f"{cur} {word}" if cur else word
    if cur:
        out.append(cur)
    return tuple(out)
