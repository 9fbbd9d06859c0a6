"""Xen's interface rules on a diff: stable or tools-only, the interface-version rule, aliases, guards.

Pure: takes the changes ``diff.diff_models`` found in the ``tools`` view and
the models of both snapshots in the other views, returns the same changes
with ``interface`` set and the severity Xen's rules give them.  The guest
views are asked for only the headers the changes are in (``Side.view``: a
partial model, ``api.dump``'s ROOTS), unless a partial one cannot stand for
the whole view (a header of it fails alone, or a macro of it loses its
value), which is then loaded instead.  Each rule
and where Xen states it:

* **stable vs tools** — a change that also shows in the ``guest`` or
  ``guest-latest`` view (no ``__XEN__``/``__XEN_TOOLS__``) is in a
  ``stable`` interface; one only the ``tools`` view sees is ``tools``
  (``domctl.h``/``sysctl.h``: "#error ... intended for use by node control
  tools only"; the ``#if defined(__XEN__) || defined(__XEN_TOOLS__)``
  blocks of ``memory.h``, ``hvm/hvm_op.h`` and others).
* **stable break** — stays ``breaking``: guests built against the old
  headers run unchanged on the new hypervisor (xen-compat.h: "Guests which
  do not specify a version get the legacy interface").
* **guarded change** — a break of a stable interface that the ``guest``
  view (legacy ``__XEN_INTERFACE_VERSION__``) does not see while it still
  has the definition, and ``guest-latest`` does, is ``compatible``: old
  guests keep the old view (xen-compat.h, ``#if __XEN_INTERFACE_VERSION__
  >= ...`` in the headers).
* **tools-only break** — allowed with a bump of the header's own
  ``*_INTERFACE_VERSION`` since the last ``RELEASE-*`` tag (domctl.h,
  sysctl.h: "The interface version needs to be incremented by 1 in case the
  interface is modified in an incompatible way AND if the version hasn't
  been incremented in the current development cycle already"): with the
  bump ``compatible``, citing it; without it kind ``interface-version``
  (breaking), naming the macro.  A tools-only definition in a header without
  a version macro belongs to the version whose prefix it has
  (``XEN_DOMCTL_CONFIG_*`` in arch-arm.h) or whose header's records contain it
  (``xen_arch_domainconfig``); with none (the tools blocks of ``memory.h``)
  it keeps ``breaking``, saying that no version covers it.
* **alias removed** — a removed macro that was another name for a macro
  that stays (its replacement text is that name, or the names differ only
  in case and underscores and the values agree: 4.22's ``VGCF_IN_KERNEL``
  next to ``VGCF_in_kernel``) is kind ``macro-alias-removed``,
  ``compatible``: an API change (sources using the old name no longer
  compile), not an ABI break.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .diff import Change, diff_models
from .model import AbiModel, ArchModel, Macro

# The version macros of tools-only interfaces (domctl.h, sysctl.h, vm_event.h, platform.h,
# xen-mca.h, flask_op.h, hvm_op.h's altp2m): not __XEN_LATEST_INTERFACE_VERSION__.
_VERSION_MACRO = re.compile(r"^[A-Z][A-Z0-9_]*_INTERFACE_VERSION$")
_IDENT = re.compile(r"^\(?\s*([A-Za-z_]\w*)\s*\)?$")
_CYCLE = re.compile(r"^export XEN_(VERSION|SUBVERSION|EXTRAVERSION)\s*\??=\s*(\S*)", re.MULTILINE)


Roots = frozenset[str] | None


@dataclass
class Side:
    """One snapshot of a diff in every view the rules ask for: LOAD(profile, roots) -> model
    (``api.dump``'s ROOTS: None for the whole tree), called at most once per pair."""

    load: Callable[[str, Roots], AbiModel]
    label: str
    cached: dict[str | tuple[str, Roots], AbiModel] = field(default_factory=dict)
    # begins LOAD(profile, roots) without waiting for it (``api.start``), or None
    begin: Callable[[str, Roots], None] | None = None

    def model(self, profile: str, roots: Roots = None) -> AbiModel:
        key = self._key(profile, roots)
        if key not in self.cached:
            self.cached[key] = self.load(profile, roots)
        return self.cached[key]

    def start(self, profile: str, roots: Roots = None) -> None:
        """Begin ``model(profile, roots)`` when it is not loaded yet: the view of the other
        side can then be done alongside (``views``)."""
        if self.begin is not None and self._key(profile, roots) not in self.cached:
            self.begin(profile, roots)

    @staticmethod
    def _key(profile: str, roots: Roots) -> str | tuple[str, Roots]:
        return profile if roots is None else (profile, roots)

    def view(self, profile: str, roots: Roots) -> AbiModel:
        """PROFILE's model of ROOTS (the headers the changes are in) where it says what the
        whole tree's would about them, else the whole tree's (``_partial_ok``)."""
        if roots is not None:
            partial = self.model(profile, roots)
            if _partial_ok(partial, self.model("tools"), roots):
                return partial
        return self.model(profile)


def views(old: Side, new: Side, profile: str, roots: Roots) -> tuple[AbiModel, AbiModel]:
    """``Side.view`` of OLD and NEW, both begun before either is waited for."""
    old.start(profile, roots)
    new.start(profile, roots)
    return old.view(profile, roots), new.view(profile, roots)


def _partial_ok(partial: AbiModel, tools: AbiModel, roots: frozenset[str]) -> bool:
    """Whether the partial PARTIAL is as good as the whole view for ROOTS: no header failed
    in it (one that needs a header outside its translation unit would fail to parse) but
    an includer that refuses the view with ``#error`` (dom0_ops.h: "a compatibility
    interface only", as it does in the whole view), and no macro of ROOTS lost a value
    the tools view has (one that uses a type or macro from outside it)."""
    for arch in partial.arches:
        if any(f.header in roots or ": #error " not in f.error for f in arch.failed):
            return False
        full = tools.arch_map.get(arch.arch)
        for m in arch.macros:
            if m.value is None and m.header in roots and full is not None:
                other = full.macro_map.get(m.name)
                if other is not None and other.value is not None:
                    return False
    return True


@dataclass(frozen=True)
class Release:
    """The ``tools`` model of the release tag the development cycle started from."""

    tag: str
    model: AbiModel


def release_base(makefile: bytes | None, tags: Sequence[str],
                 nearest: Callable[[], str | None]) -> str | None:
    """The ``RELEASE-*`` tag whose interface versions a snapshot is measured against.

    MAKEFILE is the snapshot's ``xen/Makefile`` (XEN_VERSION, XEN_SUBVERSION,
    XEN_EXTRAVERSION): a 4.22 development snapshot (``-unstable``, ``-rc``) and
    the release 4.22.0 itself count from RELEASE-4.21.0; a 4.21.N stable
    snapshot from RELEASE-4.21.0.  Xen tags releases on stable branches, so that
    tag is not an ancestor; when it is not among TAGS, NEAREST (the nearest
    tagged ancestor, ``git describe``, asked only then) is used."""
    found = dict(_CYCLE.findall(makefile.decode("utf-8", "replace"))) if makefile else {}
    try:
        major, minor = int(found["VERSION"]), int(found["SUBVERSION"])
    except (KeyError, ValueError):
        return nearest()
    extra = found.get("EXTRAVERSION", "").split("$")[0]
    point = re.fullmatch(r"\.(\d+)", extra)
    want = f"RELEASE-{major}.{minor}.0" if point and int(point.group(1)) > 0 \
        else f"RELEASE-{major}.{minor - 1}.0"
    return want if want in tags else nearest()


def _has(arch: ArchModel | None, ch: Change) -> bool:
    """Whether ARCH defines what CH is about (a macro, a type, an enumerator)."""
    if arch is None:
        return False
    if ch.kind.startswith("macro"):
        return ch.name in arch.macro_map
    if ch.kind.startswith("enumerator"):
        return any(e.name == ch.name for t in arch.types if t.kind == "enum" for e in t.enumerators)
    return ch.name in arch.type_map


def _roots(changes: Sequence[Change], *tools: AbiModel) -> frozenset[str] | None:
    """The headers the guest views must read for CHANGES: where each changed definition
    is on either side (a change names NEW's header; a definition that moved was in
    another one in OLD); None (the whole views) when a change names no header."""
    if any(not c.header for c in changes):
        return None
    out = {c.header for c in changes}
    for model in tools:
        for arch in model.arches:
            enumerators = {e.name: t.header for t in arch.types if t.kind == "enum"
                           for e in t.enumerators} \
                if any(c.kind.startswith("enumerator") for c in changes) else {}
            for ch in changes:
                if ch.kind.startswith("macro"):
                    macro = arch.macro_map.get(ch.name)
                    found = macro.header if macro else None
                elif ch.kind.startswith("enumerator"):
                    found = enumerators.get(ch.name)
                else:
                    record = arch.type_map.get(ch.name)
                    found = record.header if record else None
                if found:
                    out.add(found)
    return frozenset(out)


def _key(ch: Change) -> tuple[str, str, str | None]:
    return (ch.kind, ch.name, ch.field)


def _fold(name: str) -> str:
    return name.replace("_", "").lower()


# What ``_alias_of`` and ``_version_macro`` derive from a whole model, once per model (by
# identity: a model's hash would walk all of it), the model kept so its id stays its own.
_DERIVED: dict[tuple[str, int], tuple[object, Any]] = {}


def _once(what: str, model: object, make: Callable[[], Any]) -> Any:
    key = (what, id(model))
    hit = _DERIVED.get(key)
    if hit is None or hit[0] is not model:
        if len(_DERIVED) >= 8:  # one judgement needs 5 (4 arches and the model)
            _DERIVED.clear()
        hit = _DERIVED[key] = (model, make())
    return hit[1]


def _folded(arch: ArchModel) -> dict[str, tuple[Macro, ...]]:
    """ARCH's macros by name without case and underscores."""
    def make() -> dict[str, tuple[Macro, ...]]:
        out: dict[str, list[Macro]] = {}
        for m in arch.macros:
            out.setdefault(_fold(m.name), []).append(m)
        return {k: tuple(v) for k, v in out.items()}
    result: dict[str, tuple[Macro, ...]] = _once("folded", arch, make)
    return result


def _alias_of(ch: Change, old: AbiModel, new: AbiModel) -> str | None:
    """For a removed macro: the macro that stays and that it was another name for."""
    for arch in ch.arches:
        a, b = old.arch_map.get(arch), new.arch_map.get(arch)
        if a is None or b is None or ch.name not in a.macro_map:
            continue
        gone = a.macro_map[ch.name]
        m = _IDENT.match(gone.expr)
        if m and m.group(1) in b.macro_map:
            return m.group(1)
        for other in _folded(b).get(_fold(ch.name), ()):
            if other.name != ch.name and other.value is not None and other.value == gone.value:
                return other.name
    return None


def _version_table(new: AbiModel) -> dict[str, tuple[str, int | None]]:
    """Header -> the ``*_INTERFACE_VERSION`` it defines and its value."""
    def make() -> dict[str, tuple[str, int | None]]:
        table: dict[str, tuple[str, int | None]] = {}
        for arch in new.arches:
            for m in arch.macros:
                if _VERSION_MACRO.match(m.name):
                    table.setdefault(m.header, (m.name, m.value))
        return table
    result: dict[str, tuple[str, int | None]] = _once("versions", new, make)
    return result


def _version_macro(ch: Change, new: AbiModel) -> tuple[str, int | None, str] | None:
    """The ``*_INTERFACE_VERSION`` that governs CH in NEW, its value and why: the one its
    header defines; else the one whose prefix it has (XEN_DOMCTL_CONFIG_* in arch-arm.h:
    XEN_DOMCTL_); else, for a record, the one of a header whose records contain it
    (xen_arch_domainconfig, in arch-x86/xen.h, is xen_domctl_createdomain's ``arch``)."""
    table = _version_table(new)
    if ch.header in table:
        return (*table[ch.header], "")
    leaf = ch.name.split()[-1].lower()
    for name, value in table.values():
        prefix = name[:-len("INTERFACE_VERSION")].lower()
        if len(prefix) > 4 and leaf.startswith(prefix):
            return name, value, f" ({ch.name} has its prefix)"
    if ch.kind.startswith(("macro", "enumerator")):
        return None
    for arch in new.arches:
        for t in arch.types:
            if t.header not in table:
                continue
            for path, f in t.walk_fields():
                if f.type == ch.name or f.type.startswith(ch.name + "["):
                    return (*table[t.header], f" ({ch.name} is {t.name}'s {path})")
    return None


def _value(model: AbiModel, name: str) -> int | None:
    for arch in model.arches:
        if name in arch.macro_map:
            return arch.macro_map[name].value
    return None


def judge(changes: Sequence[Change], old: Side, new: Side,
          release: Release | None) -> tuple[Change, ...]:
    """CHANGES (of the ``tools`` views of OLD and NEW) rated by the module docstring's rules.
    RELEASE: the tools model at the last release tag (None: OLD stands for it)."""
    if not changes:
        return ()
    # The guest views are needed only for the headers the changes are in: each is read
    # with what it includes and what includes it (``api.dump``'s ROOTS), a fraction of
    # the tree (measured: a third of the work of a release pair, ``bench/abi_diff.py``).
    roots = _roots(changes, old.model("tools"), new.model("tools"))
    latest_views = views(old, new, "guest-latest", roots)
    latest = {_key(c) for c in diff_models(*latest_views)}
    # The legacy view only matters for a stable break (is it guarded?) and for a change
    # guest-latest does not see in a header the guest views parse (a name old guests
    # alone keep); domctl.h-only changes do without it (measured: a third of a history),
    # and it reads only the headers of the changes that need it.  A removed alias is
    # rated without it: guest-latest has it, and it stays compatible.  (The one header
    # guest-latest refuses and the legacy view reads, dom0_ops.h, fails in the tools
    # view too, so no change of the tools diff is in it.)
    guest_headers = {h for view in latest_views for a in view.arches for h in a.headers}
    asking = [c for c in changes
              if (_key(c) in latest and c.severity == "breaking"
                  and not (c.kind == "macro-removed"
                           and _alias_of(c, old.model("tools"), new.model("tools"))))
              or (_key(c) not in latest and c.header in guest_headers)]
    legacy_roots = _roots(asking, old.model("tools"), new.model("tools")) if asking else None
    legacy_views = views(old, new, "guest", legacy_roots) if asking else None
    legacy = {_key(c) for c in diff_models(*legacy_views)} if legacy_views else set()
    base = release.model if release else old.model("tools")
    since = release.tag if release else old.label
    out = []
    for ch in changes:
        out.append(_rate(ch, old, new, latest, legacy, legacy_views, base, since))
    return tuple(out)


def _rate(ch: Change, old: Side, new: Side, latest: set[tuple[str, str, str | None]],
          legacy: set[tuple[str, str, str | None]],
          legacy_views: tuple[AbiModel, AbiModel] | None, base: AbiModel, since: str) -> Change:
    key = _key(ch)
    stable = key in latest or key in legacy
    ch = dataclasses.replace(ch, interface="stable" if stable else "tools")
    if ch.kind == "macro-removed":
        alias = _alias_of(ch, old.model("tools"), new.model("tools"))
        if alias is not None:
            return dataclasses.replace(
                ch, kind="macro-alias-removed", severity="compatible",
                message=f"API change, not an ABI break: {ch.name} was another name for "
                        f"{alias}, which stays; sources that use {ch.name} no longer compile")
    if ch.severity != "breaking":
        return ch
    if stable:
        views = legacy_views or (old.model("guest"), new.model("guest"))
        gold = views[0].arch_map.get(ch.arches[0])
        gnew = views[1].arch_map.get(ch.arches[0])
        if key in latest and key not in legacy and _has(gold, ch) and _has(gnew, ch):
            return dataclasses.replace(
                ch, severity="compatible",
                message="guarded by __XEN_INTERFACE_VERSION__: guests built against the old "
                        "interface version keep the old view; only guests that ask for "
                        "__XEN_LATEST_INTERFACE_VERSION__ see the change (xen-compat.h)")
        return dataclasses.replace(
            ch, message="stable interface (guest-visible): guests built against the old "
                        "headers see it")
    version = _version_macro(ch, new.model("tools"))
    if version is None:
        return dataclasses.replace(
            ch, message=f"tools-only (under __XEN__ || __XEN_TOOLS__), and no "
                        f"*_INTERFACE_VERSION covers {ch.header}: the toolstack must be "
                        f"rebuilt against the new headers")
    name, now, why = version
    was = _value(base, name)
    if was is not None and now is not None and was != now:
        return dataclasses.replace(
            ch, severity="compatible", version_macro=name,
            message=f"tools-only; allowed: {name}{why} moved {was:#x} -> {now:#x} since "
                    f"{since} (incremented once per development cycle for incompatible "
                    f"changes, domctl.h/sysctl.h)")
    shown = f" (still {now:#x})" if now is not None else ""
    return dataclasses.replace(
        ch, kind="interface-version", base_kind=ch.kind, version_macro=name,
        message=f"tools-only {ch.kind} without a bump of {name}{why} since {since}{shown}: "
                f"it is to be incremented by 1 when the interface changes incompatibly, "
                f"once per development cycle (domctl.h/sysctl.h)")
