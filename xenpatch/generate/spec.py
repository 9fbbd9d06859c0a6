"""The change description: a ``[changes.NAME]`` table of the config, validated into frozen values.

A change of kind ``flag`` adds one bit to a flag family of the public
headers (``SIF_``, ``XEN_DOMCTL_CDF_``...) and, optionally, documents it
and plumbs it through the toolstack.  Its commits are listed under
``patches``, each naming the *parts* it carries:

* ``define``   — the ``#define`` in the family's header (always needed);
* ``docs``     — a section in a docs file (``[changes.NAME.docs]``);
* ``xenguest`` — libxenguest: a ``struct xc_dom_image`` member and the flag
  set in ``bootlate_hvm()`` (``[changes.NAME.toolstack]``);
* ``libxl``    — libxl/xl, for an x86-only boolean: a member of ``arch_x86``
  in the IDL, ``LIBXL_HAVE_*``, its default, validation and use in
  ``libxl_x86.c`` (refused with ``conflicts`` such as ``pvh.pvshim`` and,
  with ``only_type``, for other guest types), its refusal in
  ``libxl_arm.c``, ``xl.cfg`` parsing and documentation, and a
  ``CHANGELOG.md`` entry (``changelog``) when the tree has an UNRELEASED
  section (``[changes.NAME.toolstack]``);
* ``ocaml-cdf`` — the OCaml bindings of a ``XEN_DOMCTL_CDF_`` flag: a
  ``CDF_*`` constructor at the end of ``domain_create_flag`` in
  ``tools/ocaml/libs/xc/xenctrl.ml`` and ``.mli`` (Xen's build checks the
  variant against the bits with ``tools/ocaml/libs/xc/abi-check``).

Texts may say ``{meaning}``: the change's ``meaning``, the one sentence that
the header comment, the docs, xl.cfg(5) and the commit messages all state
(self-check ``meaning``); ``comment`` defaults to it.  ``credits`` are cover
letter lines crediting others in words (never a Signed-off-by: only its
author gives one).  ``requires`` names, by a pattern on macro names, what
the tree must have for the docs' claim to hold; without it the summary says
so and the cover letter carries ``requires.absent``.

Versions: ``[changes.NAME.v2]`` (``v3``...) amends the change for
``generate --version 2``: ``changes`` (required) is the cover letter's
"Changes since v1" list; ``in_reply_to`` the Message-ID of v1's cover
letter; ``[[changes.NAME.v2.patches]]``, one table per patch in order, give
each patch's ``changes`` ("Changes in v2:" after its ``---``) and optionally
a new ``body``/``subject``; any of ``cover_subject``, ``cover_body``,
``comment``, ``meaning``, ``credits`` is replaced, and ``docs``/``toolstack``
keys are replaced one by one.  Version N applies v2 ... vN in order.

Every error names the key at fault (``changes.NAME.KEY``), exit 2.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError

PARTS = ("define", "docs", "xenguest", "libxl", "ocaml-cdf")
CDF_FAMILY = "XEN_DOMCTL_CDF_"
IDIOMS = ("auto", "shift", "bit-number")
TYPES = ("pv", "pvh", "hvm")  # libxl_domain_type, as b_info->u is keyed
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
    """An x86-only boolean of xl.cfg(5) and libxl (``arch_x86`` of domain_build_info)."""

    option: str  # xl.cfg option and member of libxl_domain_build_info's arch_x86
    field: str  # member of struct xc_dom_image
    libxl_have: str  # LIBXL_HAVE_* define announcing the member
    summary: str  # one line: the xc_dom_image member's comment
    api_doc: str  # the LIBXL_HAVE_* comment after "... has an arch_x86.OPTION field."
    xl_doc: str  # the xl.cfg(5) text of the option
    arch: str = "x86"  # libxl's arch_x86: Arm refuses the option (libxl_arm.c)
    only_type: str | None = None  # "pvh": refused for other guest types
    conflicts: tuple[str, ...] = ()  # "pvh.pvshim": u.pvh booleans it cannot be combined with
    changelog: str | None = None  # the CHANGELOG.md "### Added" entry


@dataclass(frozen=True)
class Requirement:
    """A symbol the docs' claim needs in the tree (e.g. an SEV domain-creation flag)."""

    pattern: str  # regular expression on macro names of the base's public headers
    what: str  # the symbol in words, for the summary
    absent: str  # cover-letter paragraph when no macro matches


@dataclass(frozen=True)
class PatchSpec:
    subject: str
    body: str
    parts: tuple[str, ...]
    # "Changes in vN:" lists, newest version first: ((2, ("...", ...)), ...)
    changelog: tuple[tuple[int, tuple[str, ...]], ...] = ()


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
    meaning: str | None = None  # the key sentence every place states (self-check "meaning")
    credits: tuple[str, ...] = ()  # cover-letter credit lines ("Based on an RFC by ...")
    requires: Requirement | None = None
    version: int = 1
    changes: tuple[str, ...] = ()  # the cover letter's "Changes since v<version-1>:"
    in_reply_to: str | None = None  # Message-ID of the previous version's cover letter


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


def _str_list(raw: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(f"{where}.{key} must be a list of non-empty strings")
    return tuple(v.strip() for v in value)


def _toolstack(raw: Any, where: str) -> ToolstackOption:
    t = _table(raw, where)
    _unknown(t, {"option", "field", "libxl_have", "summary", "api_doc", "xl_doc", "arch",
                 "only_type", "conflicts", "changelog"}, where)
    arch = _str(t, "arch", where, default="x86")
    if arch != "x86":
        raise ConfigError(f"{where}.arch = {arch!r}: only \"x86\" options (libxl's arch_x86) "
                          "are supported")
    only = t.get("only_type")
    if only is not None and only not in TYPES:
        raise ConfigError(f"{where}.only_type = {only!r}: must be one of {', '.join(TYPES)}")
    conflicts = _str_list(t, "conflicts", where)
    for c in conflicts:
        if not re.match(rf"^({'|'.join(TYPES)})\.[A-Za-z_][A-Za-z0-9_]*$", c):
            raise ConfigError(f"{where}.conflicts: {c!r} is not TYPE.MEMBER (a boolean of "
                              "libxl_domain_build_info's u.TYPE, e.g. \"pvh.pvshim\")")
    changelog = _str(t, "changelog", where) if "changelog" in t else None
    return ToolstackOption(_str(t, "option", where, pattern=_C_IDENT),
                           _str(t, "field", where, pattern=_C_IDENT),
                           _str(t, "libxl_have", where, pattern=_C_IDENT),
                           _str(t, "summary", where), _str(t, "api_doc", where),
                           _str(t, "xl_doc", where), arch, only, conflicts, changelog)


def _requires(raw: Any, where: str) -> Requirement:
    t = _table(raw, where)
    _unknown(t, {"pattern", "what", "absent"}, where)
    pattern = _str(t, "pattern", where)
    try:
        re.compile(pattern)
    except re.error as e:
        raise ConfigError(f"{where}.pattern = {pattern!r}: {e}") from e
    return Requirement(pattern, _str(t, "what", where), _str(t, "absent", where))


def _patches(raw: Any, where: str) -> tuple[PatchSpec, ...]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{where} must be a non-empty list of [[{where}]] tables")
    out = []
    for i, item in enumerate(raw, 1):
        w = f"{where}[{i}]"
        t = _table(item, w)
        changelog = t.get("changelog", ())
        if not isinstance(changelog, tuple):  # only [changes.NAME.vN.patches] set it
            raise ConfigError(f"unknown key {w}.changelog (give it in [[changes.NAME.vN.patches]])")
        _unknown(t, {"subject", "body", "parts", "changelog"}, w)
        parts = t.get("parts")
        if not isinstance(parts, list) or not parts or not all(isinstance(p, str) for p in parts):
            raise ConfigError(f"{w}.parts must be a non-empty list of {', '.join(PARTS)}")
        bad = [p for p in parts if p not in PARTS]
        if bad:
            raise ConfigError(f"{w}.parts: unknown part {bad[0]!r} (known: {', '.join(PARTS)})")
        out.append(PatchSpec(_subject(t, "subject", w), _str(t, "body", w), tuple(parts),
                             changelog))
    return tuple(out)


def _meaning_in(text: str, meaning: str | None) -> str:
    """TEXT with ``{meaning}`` replaced by the change's meaning sentence."""
    if "{meaning}" not in text:
        return text
    if meaning is None:
        raise ConfigError(f"{{meaning}} is used but no meaning is given: {text[:40]!r}...")
    return text.replace("{meaning}", " ".join(meaning.split()))


def _substitute(t: dict[str, Any], meaning: str | None) -> None:
    """Every text of the raw change with ``{meaning}`` filled in (in place)."""
    for key in ("cover_body", "comment"):
        if isinstance(t.get(key), str):
            t[key] = _meaning_in(t[key], meaning)
    for table, key in (("docs", "text"), ("toolstack", "xl_doc"), ("toolstack", "api_doc")):
        if isinstance(t.get(table), dict) and isinstance(t[table].get(key), str):
            t[table][key] = _meaning_in(t[table][key], meaning)
    for p in t.get("patches", []) if isinstance(t.get("patches"), list) else []:
        if isinstance(p, dict) and isinstance(p.get("body"), str):
            p["body"] = _meaning_in(p["body"], meaning)


TOP_KEYS = {"kind", "family", "name", "bit", "comment", "idiom", "cover_subject", "cover_body",
            "patches", "docs", "toolstack", "meaning", "credits", "requires"}


def parse_change(key: str, raw: Any, version: int = 1, fallback: bool = False) -> ChangeSpec:
    """Validate one ``[changes.KEY]`` table, as of VERSION (its ``vN`` tables applied).
    FALLBACK: a missing ``vN`` table is no error (``--changelog`` gives the changes)."""
    where = f"changes.{key}"
    t = dict(_table(raw, where))
    versions = sorted(k for k in t if VERSION_KEY.match(k))
    _unknown(t, TOP_KEYS | set(versions), where)
    overlays = {int(k[1:]): _table(t.pop(k), f"{where}.{k}") for k in versions}
    if 1 in overlays or 0 in overlays:
        raise ConfigError(f"{where}.v{min(overlays)}: versions start at v2 (v1 is the change "
                          "itself)")
    t, changes, reply = _apply_versions(t, overlays, version, where, fallback)
    meaning = " ".join(_str(t, "meaning", where).split()) if "meaning" in t else None
    _substitute(t, meaning)
    if "comment" not in t and meaning is not None:
        t["comment"] = meaning
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
    credits = _str_list(t, "credits", where)
    for line in credits:
        # A Signed-off-by certifies the DCO (docs/process/sending-patches.pandoc):
        # only its author can give it; credit others in words.
        if re.match(r"(?i)^\s*signed-off-by\s*:", line):
            raise ConfigError(f"{where}.credits: {line!r}: a Signed-off-by is given only by "
                              "its author; credit in words (e.g. \"Based on an RFC by ...\")")
    requires = _requires(t["requires"], f"{where}.requires") if "requires" in t else None
    return ChangeSpec(key=key, kind=kind, family=family, name=name, bit=_bit(t, where),
                      comment=_str(t, "comment", where), idiom=idiom,
                      cover_subject=_subject(t, "cover_subject", where),
                      cover_body=_str(t, "cover_body", where), patches=patches,
                      docs=docs, toolstack=toolstack, meaning=meaning, credits=credits,
                      requires=requires, version=version, changes=changes, in_reply_to=reply)


VERSION_KEY = re.compile(r"^v\d+$")
OVERLAY_KEYS = {"changes", "in_reply_to", "patches", "cover_subject", "cover_body", "comment",
                "meaning", "credits", "docs", "toolstack"}


def _apply_versions(t: dict[str, Any], overlays: Mapping[int, Mapping[str, Any]], version: int,
                    where: str, fallback: bool = False
                    ) -> tuple[dict[str, Any], tuple[str, ...], str | None]:
    """T with the ``v2`` ... ``vVERSION`` tables applied in order; the cover letter's
    changes and the Message-ID to reply to, both of VERSION itself."""
    t = copy.deepcopy(t)
    changes: tuple[str, ...] = ()
    reply: str | None = None
    for n in range(2, version + 1):
        w = f"{where}.v{n}"
        if n not in overlays and fallback:
            changes, reply = (), None
            continue
        if n not in overlays:
            raise ConfigError(f"{w} is missing: version {version} needs a [{w}] table with "
                              "its changes (what answers the review of the previous version)")
        o = overlays[n]
        _unknown(o, OVERLAY_KEYS, w)
        changes = _str_list(o, "changes", w)
        if not changes:
            raise ConfigError(f"{w}.changes is missing: the cover letter's \"Changes since "
                              f"v{n - 1}\" list")
        reply = _str(o, "in_reply_to", w) if "in_reply_to" in o else None
        for k, v in o.items():
            if k in ("docs", "toolstack"):
                if not isinstance(t.get(k), dict):
                    raise ConfigError(f"{w}.{k}: the change has no [{where}.{k}] to amend")
                t[k] = {**t[k], **_table(v, f"{w}.{k}")}
            elif k == "patches":
                t["patches"] = _patch_overlay(t.get("patches"), v, n, f"{w}.patches")
            elif k not in ("changes", "in_reply_to"):
                t[k] = v
    return t, changes, reply


def _patch_overlay(base: Any, raw: Any, n: int, where: str) -> list[dict[str, Any]]:
    """The patches with version N's ``[[vN.patches]]`` (one per patch, in order) applied:
    a new body or subject, and the patch's "Changes in vN:" list."""
    if not isinstance(base, list) or not isinstance(raw, list) or len(raw) != len(base):
        count = len(base) if isinstance(base, list) else 0
        raise ConfigError(f"{where} must list one table per patch ({count}), in order")
    out = []
    for i, (patch, new) in enumerate(zip(base, raw, strict=True), 1):
        w = f"{where}[{i}]"
        new = _table(new, w)
        _unknown(new, {"subject", "body", "changes"}, w)
        merged = {**patch, **{k: v for k, v in new.items() if k != "changes"}}
        merged["changelog"] = ((n, _str_list(new, "changes", w)),) + \
            tuple(patch.get("changelog", ()))
        out.append(merged)
    return out


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


def load_change(changes: Mapping[str, Any], key: str, version: int = 1,
                fallback: bool = False) -> ChangeSpec:
    """The change KEY of the config's ``[changes]`` tables, as of VERSION."""
    if key not in changes:
        known = ", ".join(sorted(changes)) or "none"
        raise ConfigError(f"changes.{key}: no such change in the config (known: {known})")
    return parse_change(key, changes[key], version, fallback)
