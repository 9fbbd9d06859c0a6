"""Composing the series: each patch's parts rendered from templates into the tree's files.

The anchors below say where each toolstack hunk goes in Xen's source; the
text comes from ``templates/generate/``.  Pure: base file contents in,
new file contents and commit messages out.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import jinja2

from .edit import Anchor, AnchorError, insert_at, locate, replace_line, split_lines
from .flag import FlagPlan, wrap_words
from .render import render
from .spec import CDF_FAMILY, ChangeSpec, PatchSpec

COLUMNS = 79  # Xen's CODING_STYLE: "Lines should be less than 80 characters in length"


@dataclass(frozen=True)
class Edit:
    path: str
    template: str
    anchor: Anchor


# Where the toolstack hunks go.  Checked against Xen 4.17.5 and master.  An
# x86-only option lives where Xen keeps them (0570d7f276, msr_relaxed):
# arch_x86 of the IDL, its default and use in libxl_x86.c; it is validated in
# libxl__arch_domain_prepare_config() (as d057628757 refuses an Arm option on
# x86) and refused by libxl_arm.c.
def _in_function(what: str, function: str, line: str, *, where: str = "after",
                 last: bool = False) -> Anchor:
    return Anchor(f"{what} in {function}()", (rf"^int {re.escape(function)}\(", line),
                  where=where, stop=r"^\}", last=last)


_PREPARE = "libxl__arch_domain_prepare_config"
_BEFORE_PREPARE = Anchor(f"'int {_PREPARE}('", (rf"^int {_PREPARE}\(",), where="before")
_PREPARE_RETURN = _in_function("the last 'return 0;'", _PREPARE, r"^    return 0;",
                               where="before", last=True)

TOOLSTACK_EDITS: dict[str, tuple[Edit, ...]] = {
    "xenguest": (
        Edit("tools/include/xenguest.h", "xenguest/xc_dom_image-field.h.j2",
             Anchor("the end of struct xc_dom_image", (r"^struct xc_dom_image \{", r"^\};"),
                    where="before")),
        Edit("tools/libs/guest/xg_dom_x86.c", "xenguest/bootlate_hvm.c.j2",
             Anchor("'start_info->magic = ' in bootlate_hvm()",
                    (r"^static int bootlate_hvm\(", r"^\s+start_info->magic = "),
                    where="before", stop=r"^\}")),
    ),
    "libxl": (
        Edit("tools/libs/light/libxl_types.idl", "libxl/types.idl.j2",
             Anchor("the end of the \"arch_x86\" Struct of libxl_domain_build_info",
                    (r'^(?P<indent>\s*\("arch_x86", Struct\(None, \[)\(', r"^\s*\]\)\),"),
                    where="before")),
        Edit("tools/include/libxl.h", "libxl/libxl-have.h.j2",
             Anchor("the last '#define LIBXL_HAVE_*'", (r"^#define LIBXL_HAVE_\w+",), last=True)),
        Edit("tools/libs/light/libxl_x86.c", "libxl/x86-valid.c.j2", _BEFORE_PREPARE),
        Edit("tools/libs/light/libxl_x86.c", "libxl/prepare-call.c.j2", _PREPARE_RETURN),
        Edit("tools/libs/light/libxl_x86.c", "libxl/x86-build.c.j2",
             _in_function("the last 'return 0;'", "libxl__arch_domain_init_hw_description",
                          r"^    return 0;", where="before", last=True)),
        Edit("tools/libs/light/libxl_x86.c", "libxl/x86-default.c.j2",
             _in_function("the msr_relaxed default", "libxl__arch_domain_build_info_setdefault",
                          r"^\s+libxl_defbool_setdefault\(&b_info->arch_x86\.msr_relaxed,")),
        Edit("tools/libs/light/libxl_arm.c", "libxl/arm-refuse.c.j2", _BEFORE_PREPARE),
        Edit("tools/libs/light/libxl_arm.c", "libxl/prepare-call.c.j2", _PREPARE_RETURN),
        Edit("tools/xl/xl_parse.c", "libxl/xl-parse.c.j2",
             Anchor("the last 'xlu_cfg_destroy(config);' in parse_config_data()",
                    (r"^void parse_config_data\(", r"^    xlu_cfg_destroy\(config\);"),
                    where="before", stop=r"^\}", last=True)),
        Edit("docs/man/xl.cfg.5.pod.in", "libxl/xl-cfg.pod.j2",
             Anchor("the '=back' closing '=head3 x86' (Architecture Specific options)",
                    (r"^=head3 x86\s*$", r"^=back"), where="before", stop=r"^=head",
                    last=True)),
    ),
}

CHANGELOG = "CHANGELOG.md"


# The OCaml bindings of XEN_DOMCTL_CDF_* (part "ocaml-cdf"): the variant in
# both files; checked against Xen 4.17.5 (tabs in .ml) and master (ocamlformat).
OCAML_CDF_FILES = ("tools/ocaml/libs/xc/xenctrl.ml", "tools/ocaml/libs/xc/xenctrl.mli")
OCAML_CDF_ANCHOR = Anchor("the last constructor of 'type domain_create_flag ='",
                          (r"^type domain_create_flag =\s*$",
                           r"^(?P<indent>\s*)\|(?P<gap>\s*)CDF_\w+\s*$"),
                          stop=r"^(\S|\s*$)", last=True)


@dataclass(frozen=True)
class PatchText:
    """One commit: its message and the new contents of the files it touches."""

    subject: str
    message: str
    files: tuple[tuple[str, str], ...]  # (path in the tree, new content), sorted by path


def define_lines(env: jinja2.Environment, spec: ChangeSpec, plan: FlagPlan) -> str:
    """The rendered ``#define`` (with its comment) for PLAN."""
    if plan.comment_style == "trailing":
        width = COLUMNS - plan.comment_column - len("/*  */")
        lines = wrap_words(spec.comment, max(width, 20))
    else:
        one = len(plan.comment_indent) + len(f"/* {spec.comment} */")
        lines = (spec.comment,) if one <= COLUMNS else \
            wrap_words(spec.comment, COLUMNS - len(plan.comment_indent) - 3)
    return render(env, "define.h.j2", name=plan.name, bit=plan.bit, idiom=plan.idiom,
                  value_prefix=plan.value_prefix, value_suffix=plan.value_suffix,
                  value_column=plan.value_column, comment_style=plan.comment_style,
                  comment_column=plan.comment_column, comment_indent=plan.comment_indent,
                  comment_lines=list(lines), columns=COLUMNS)


def apply_define(text: str, env: jinja2.Environment, spec: ChangeSpec, plan: FlagPlan) -> str:
    """The header with the define inserted and ``*_MAX`` markers moved to the new flag."""
    lines = split_lines(text)
    for index, old_name in plan.markers:
        text = replace_line(text, index, re.sub(rf"\b{re.escape(old_name)}\b", plan.name,
                                                lines[index].rstrip("\n")))
    return insert_at(text, plan.insert_index, define_lines(env, spec, plan))


def apply_docs(text: str, env: jinja2.Environment, spec: ChangeSpec) -> str:
    assert spec.docs is not None
    heading = (rf"^(?P<marks>#+)\s*{re.escape(spec.docs.before)}\s*(?P<closing>#*)\s*$")
    where = locate(text, Anchor(f"the heading {spec.docs.before!r}", (heading,), where="before"),
                   spec.docs.file)
    closing = " " + where.match.group("marks") if where.match.group("closing") else ""
    section = render(env, "docs-section.j2", marks=where.match.group("marks"),
                     closing=closing, title=spec.docs.title, text=spec.docs.text)
    return insert_at(text, where.index, section)


def apply_edit(text: str, env: jinja2.Environment, spec: ChangeSpec, edit: Edit) -> str:
    where = locate(text, edit.anchor, edit.path)
    groups = {**where.first.groupdict(), **where.match.groupdict()}
    indent = " " * len(groups.get("indent") or "")
    hunk = render(env, edit.template, name=spec.name, toolstack=spec.toolstack, indent=indent)
    return insert_at(text, where.index, hunk)


def apply_ocaml_cdf(text: str, env: jinja2.Environment, spec: ChangeSpec, plan: FlagPlan,
                    path: str) -> str:
    """TEXT (xenctrl.ml or .mli) with the flag's constructor added to ``domain_create_flag``."""
    where = locate(text, OCAML_CDF_ANCHOR, path)
    lines = split_lines(text)
    start = next(i for i in range(where.index) if re.match(OCAML_CDF_ANCHOR.steps[0], lines[i]))
    count = sum(1 for line in lines[start + 1:where.index] if re.match(r"^\s*\|", line))
    # tools/ocaml/libs/xc/abi-check: the N-th constructor must be bit N, and
    # XEN_DOMCTL_CDF_MAX the last one.
    if count != plan.bit:
        raise AnchorError(f"{path}:{start + 1}: domain_create_flag lists {count} flags (bits "
                          f"0-{count - 1}) but {spec.name} takes bit {plan.bit}: "
                          "tools/ocaml/libs/xc/abi-check needs every bit, in order")
    constructor = "CDF_" + spec.name[len(CDF_FAMILY):].upper()
    hunk = render(env, "ocaml/domain_create_flag.j2", indent=where.match.group("indent"),
                  gap=where.match.group("gap"), constructor=constructor)
    return insert_at(text, where.index, hunk)


def apply_changelog(text: str, env: jinja2.Environment, entry: str) -> str | None:
    """CHANGELOG.md with ENTRY under "### Added" of its UNRELEASED section (made if
    missing); None when the newest section is a release (a stable tree)."""
    lines = split_lines(text)
    top = next((i for i, line in enumerate(lines) if line.startswith("## [")), None)
    if top is None or "UNRELEASED" not in lines[top]:
        return None
    end = next((i for i in range(top + 1, len(lines)) if lines[i].startswith("## ")),
               len(lines))
    hunk = render(env, "changelog.md.j2", text=entry)
    added = next((i for i in range(top + 1, end) if re.match(r"^### Added\s*$", lines[i])),
                 None)
    if added is None:
        # Keep a Changelog's order in Xen's file: Changed, Added, Removed.
        at = next((i for i in range(top + 1, end) if re.match(r"^### Removed", lines[i])), end)
        return insert_at(text, at, "### Added\n" + hunk + "\n")
    stop = next((i for i in range(added + 1, end) if lines[i].startswith("#")), end)
    at = stop
    while at > added + 1 and not lines[at - 1].strip():
        at -= 1
    return insert_at(text, at, hunk)


def commit_message(env: jinja2.Environment, patch: PatchSpec, *, identity: str,
                   signoff: bool) -> str:
    """The commit message of PATCH; its "Changes in vN:" lists go after a ``---`` line,
    which ``git am`` drops (docs/process/sending-patches.pandoc)."""
    changelog = [(v, items) for v, items in patch.changelog if items]
    message = render(env, "commit-message.txt.j2", subject=patch.subject, body=patch.body,
                     signoff=signoff, identity=identity, changelog=changelog)
    return message.rstrip("\n") + "\n"


def compose(spec: ChangeSpec, plan: FlagPlan, read: Callable[[str], str],
            env: jinja2.Environment, *, identity: str, signoff: bool,
            optional: Callable[[str], str | None] | None = None
            ) -> tuple[tuple[PatchText, ...], tuple[str, ...]]:
    """The patches of SPEC and notes on what was left out: READ(path) gives a file of the
    base tree (InputError if absent), OPTIONAL(path) None for a file it may lack."""
    state: dict[str, str] = {}
    notes: list[str] = []

    def get(path: str) -> str:
        if path not in state:
            state[path] = read(path)
        return state[path]

    out = []
    for patch in spec.patches:
        touched: list[str] = []
        for part in patch.parts:
            touched += _apply_part(part, spec, plan, env, get, state)
        if "libxl" in patch.parts and spec.toolstack and spec.toolstack.changelog:
            touched += _changelog(spec.toolstack.changelog, env, state, optional, notes)
        message = commit_message(env, patch, identity=identity, signoff=signoff)
        out.append(PatchText(patch.subject, message,
                             tuple(sorted((p, state[p]) for p in set(touched)))))
    return tuple(out), tuple(notes)


def _changelog(entry: str, env: jinja2.Environment, state: dict[str, str],
               optional: Callable[[str], str | None] | None, notes: list[str]) -> list[str]:
    text = state.get(CHANGELOG) or (optional(CHANGELOG) if optional else None)
    if text is None:
        notes.append(f"no {CHANGELOG} in the tree: no changelog entry")
        return []
    new = apply_changelog(text, env, entry)
    if new is None:
        notes.append(f"{CHANGELOG}: the newest section is a release, not UNRELEASED (a stable "
                     "tree): no changelog entry")
        return []
    state[CHANGELOG] = new
    return [CHANGELOG]


def _apply_part(part: str, spec: ChangeSpec, plan: FlagPlan, env: jinja2.Environment,
                get: Callable[[str], str], state: dict[str, str]) -> list[str]:
    if part == "define":
        state[plan.path] = apply_define(get(plan.path), env, spec, plan)
        return [plan.path]
    if part == "docs":
        assert spec.docs is not None
        state[spec.docs.file] = apply_docs(get(spec.docs.file), env, spec)
        return [spec.docs.file]
    if part == "ocaml-cdf":
        for path in OCAML_CDF_FILES:
            state[path] = apply_ocaml_cdf(get(path), env, spec, plan, path)
        return list(OCAML_CDF_FILES)
    paths = []
    for edit in TOOLSTACK_EDITS[part]:
        state[edit.path] = apply_edit(get(edit.path), env, spec, edit)
        paths.append(edit.path)
    return paths
