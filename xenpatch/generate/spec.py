"""The change description: a ``[changes.NAME]`` table of the config, validated into frozen values.

A change of kind ``flag`` adds one bit to a flag family of the public
headers (``SIF_``, ``XEN_DOMCTL_CDF_``...) and, optionally, documents it
and plumbs it through the toolstack.  Its commits are listed under
``patches``, each naming the *parts* it carries:

* ``define``   — the ``#define`` in the family's header (always needed);
* ``docs``     — a section in a docs file (``[changes.NAME.docs]``);
* ``xenguest`` — libxenguest: a ``struct xc_dom_image`` member and the flag
  set in ``bootlate_hvm()`` (``[changes.NAME.toolstack]``);
* ``libxl``    — libxl/xl: IDL field, ``LIBXL_HAVE_*``, default, use,
  ``xl.cfg`` parsing and documentation (``[changes.NAME.toolstack]``);
* ``ocaml-cdf`` — the OCaml bindings of a ``XEN_DOMCTL_CDF_`` flag: a
  ``CDF_*`` constructor at the end of ``domain_create_flag`` in
  ``tools/ocaml/libs/xc/xenctrl.ml`` and ``.mli`` (Xen's build checks the
  variant against the bits with ``tools/ocaml/libs/xc/abi-check``).

Every error names the key at fault (``changes.NAME.KEY``), exit 2.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError

PARTS = ("define", "docs", "xenguest", "libxl", "ocaml-cdf")
CDF_FAMILY = "XEN_DOMCTL_CDF_"
IDIOMS = ("auto", "shift", "bit-number")
_C_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Xen's patch rules (docs/process/sending-patches.pandoc): subject lines of at
# most 80 columns, body lines of at most 75.
SUBJECT_MAX = 80


@dataclass(frozen=True)
class DocsSection:
    file: str  # path in the tree, e.g. docs/misc/pvh.pandoc
    title: str
    before: str  # the heading the new section goes before
    text: str


@dataclass(frozen=True)
class ToolstackOption:
    option: str  # xl.cfg option and member of libxl_domain_build_info's u.pvh
    field: str  # member of struct xc_dom_image
    libxl_have: str  # LIBXL_HAVE_* define announcing the member
    summary: str  # one line: what setting the option does (comments)
    xl_doc: str  # the xl.cfg(5) text of the option


@dataclass(frozen=True)
class PatchSpec:
    subject: str
    body: str
    parts: tuple[str, ...]


@dataclass(frozen=True)
class ChangeSpec:
    key: str  # NAME of [changes.NAME]
    kind: str  # "flag"
    family: str  # macro prefix: "SIF_"
    name: str  # the new macro
    bit: int | None  # None: the lowest free bit ("auto")
    comment: str
    idiom: str  # auto | shift | bit-number (_NAME bit number + NAME (1U<<_NAME))
    cover_subject: str
    cover_body: str
    patches: tuple[PatchSpec, ...]
    docs: DocsSection | None = None
    toolstack: ToolstackOption | None = None


def _table(raw: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} must be a table")
    return raw


def _str(raw: Mapping[str, Any], key: str, where: str, *, default: str | None = None,
         pattern: re.Pattern[str] | None = None) -> str:
    if key not in raw:
        if default is not None:
            return default
        raise ConfigError(f"{where}.{key} is missing")
    value = raw[key]
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}.{key} must be a non-empty string, not {value!r}")
    if pattern is not None and not pattern.match(value):
        raise ConfigError(f"{where}.{key} = {value!r}: must be a C identifier")
    return value.strip("\n")


def _unknown(raw: Mapping[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(raw) - allowed)
    if extra:
        raise ConfigError(f"unknown key {where}.{extra[0]}")


def _subject(raw: Mapping[str, Any], key: str, where: str) -> str:
    value = _str(raw, key, where)
    if "\n" in value or len(value) > SUBJECT_MAX:
        raise ConfigError(f"{where}.{key}: a subject is one line of at most {SUBJECT_MAX} "
                          f"columns ({len(value)} given)")
    return value


def _bit(raw: Mapping[str, Any], where: str) -> int | None:
    value = raw.get("bit", "auto")
    if value == "auto":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 63:
        raise ConfigError(f"{where}.bit = {value!r}: must be \"auto\" or a bit number 0-63")
    return value


def _docs(raw: Any, where: str) -> DocsSection:
    t = _table(raw, where)
    _unknown(t, {"file", "title", "before", "text"}, where)
    return DocsSection(_str(t, "file", where), _str(t, "title", where),
                       _str(t, "before", where), _str(t, "text", where))


def _toolstack(raw: Any, where: str) -> ToolstackOption:
    t = _table(raw, where)
    _unknown(t, {"option", "field", "libxl_have", "summary", "xl_doc"}, where)
    return ToolstackOption(_str(t, "option", where, pattern=_C_IDENT),
                           _str(t, "field", where, pattern=_C_IDENT),
                           _str(t, "libxl_have", where, pattern=_C_IDENT),
                           _str(t, "summary", where), _str(t, "xl_doc", where))


def _patches(raw: Any, where: str) -> tuple[PatchSpec, ...]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{where} must be a non-empty list of [[{where}]] tables")
    out = []
    for i, item in enumerate(raw, 1):
        w = f"{where}[{i}]"
        t = _table(item, w)
        _unknown(t, {"subject", "body", "parts"}, w)
        parts = t.get("parts")
        if not isinstance(parts, list) or not parts or not all(isinstance(p, str) for p in parts):
            raise ConfigError(f"{w}.parts must be a non-empty list of {', '.join(PARTS)}")
        bad = [p for p in parts if p not in PARTS]
        if bad:
            raise ConfigError(f"{w}.parts: unknown part {bad[0]!r} (known: {', '.join(PARTS)})")
        out.append(PatchSpec(_subject(t, "subject", w), _str(t, "body", w), tuple(parts)))
    return tuple(out)


def parse_change(key: str, raw: Any) -> ChangeSpec:
    """Validate one ``[changes.KEY]`` table."""
    where = f"changes.{key}"
    t = _table(raw, where)
    _unknown(t, {"kind", "family", "name", "bit", "comment", "idiom", "cover_subject",
                 "cover_body", "patches", "docs", "toolstack"}, where)
    kind = _str(t, "kind", where)
    if kind != "flag":
        raise ConfigError(f"{where}.kind = {kind!r}: only \"flag\" changes are supported")
    family = _str(t, "family", where)
    name = _str(t, "name", where, pattern=_C_IDENT)
    if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", family) or not name.startswith(family):
        raise ConfigError(f"{where}.name = {name!r}: must start with the family {family!r}")
    idiom = _str(t, "idiom", where, default="auto")
    if idiom not in IDIOMS:
        raise ConfigError(f"{where}.idiom = {idiom!r}: must be one of {', '.join(IDIOMS)}")
    docs = _docs(t["docs"], f"{where}.docs") if "docs" in t else None
    toolstack = _toolstack(t["toolstack"], f"{where}.toolstack") if "toolstack" in t else None
    patches = _patches(t.get("patches"), f"{where}.patches")
    _check_parts(patches, docs, toolstack, where, family, name)
    return ChangeSpec(key=key, kind=kind, family=family, name=name, bit=_bit(t, where),
                      comment=_str(t, "comment", where), idiom=idiom,
                      cover_subject=_subject(t, "cover_subject", where),
                      cover_body=_str(t, "cover_body", where), patches=patches,
                      docs=docs, toolstack=toolstack)


def _check_ocaml_cdf(family: str, name: str, where: str) -> None:
    # tools/ocaml/libs/xc/abi-check maps constructor CDF_FOO to
    # XEN_DOMCTL_CDF_ + lc("FOO"): only lower-case names round-trip.
    if family != CDF_FAMILY:
        raise ConfigError(f"{where}.patches: part 'ocaml-cdf' needs family {CDF_FAMILY!r}, "
                          f"not {family!r}")
    suffix = name[len(CDF_FAMILY):]
    if not suffix or suffix != suffix.lower():
        raise ConfigError(f"{where}.name = {name!r}: part 'ocaml-cdf' needs a lower-case name "
                          f"after {CDF_FAMILY} (abi-check lower-cases the OCaml constructor)")


def _check_parts(patches: tuple[PatchSpec, ...], docs: DocsSection | None,
                 toolstack: ToolstackOption | None, where: str, family: str = "",
                 name: str = "") -> None:
    seen: list[str] = [p for patch in patches for p in patch.parts]
    for part in set(seen):
        if seen.count(part) > 1:
            raise ConfigError(f"{where}.patches: part {part!r} is listed twice")
    if "define" not in seen:
        raise ConfigError(f"{where}.patches: no patch carries the 'define' part")
    if "docs" in seen and docs is None:
        raise ConfigError(f"{where}.docs is missing (a patch lists the 'docs' part)")
    if "ocaml-cdf" in seen:
        _check_ocaml_cdf(family, name, where)
    if ({"xenguest", "libxl"} & set(seen)) and toolstack is None:
        raise ConfigError(f"{where}.toolstack is missing (a patch lists a toolstack part)")


def load_change(changes: Mapping[str, Any], key: str) -> ChangeSpec:
    """The change KEY of the config's ``[changes]`` tables."""
    if key not in changes:
        known = ", ".join(sorted(changes)) or "none"
        raise ConfigError(f"changes.{key}: no such change in the config (known: {known})")
    return parse_change(key, changes[key])
