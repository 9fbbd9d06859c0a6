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
from .spec import CDF_FAMILY, ChangeSpec

COLUMNS = 80  # Xen's CODING_STYLE: lines of at most 80 characters


@dataclass(frozen=True)
class Edit:
    path: str
    template: str
    anchor: Anchor


# Where the toolstack hunks go.  Checked against Xen 4.17.5 and master.
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
             Anchor("the end of the \"pvh\" Struct of libxl_domain_build_info",
                    (r'^(?P<indent>\s*\("pvh", Struct\(None, \[)\(', r"^\s*\]\)\),"),
                    where="before")),
        Edit("tools/include/libxl.h", "libxl/libxl-have.h.j2",
             Anchor("the last '#define LIBXL_HAVE_*'", (r"^#define LIBXL_HAVE_\w+",), last=True)),
        Edit("tools/libs/light/libxl_create.c", "libxl/create-default.c.j2",
             Anchor("'case LIBXL_DOMAIN_TYPE_PVH:' in libxl__domain_build_info_setdefault()",
                    (r"^int libxl__domain_build_info_setdefault\(",
                     r"^\s+case LIBXL_DOMAIN_TYPE_PVH:"), stop=r"^\}")),
        Edit("tools/libs/light/libxl_dom.c", "libxl/dom-build.c.j2",
             Anchor("'dom->container_type = XC_DOM_HVM_CONTAINER;' in libxl__build_hvm()",
                    (r"^int libxl__build_hvm\(",
                     r"^\s+dom->container_type = XC_DOM_HVM_CONTAINER;"), stop=r"^\}")),
        Edit("tools/xl/xl_parse.c", "libxl/xl-parse.c.j2",
             Anchor("'if (b_info->type == LIBXL_DOMAIN_TYPE_PVH) {' in parse_config_data()",
                    (r"^void parse_config_data\(",
                     r"^\s+if \(b_info->type == LIBXL_DOMAIN_TYPE_PVH\) \{"), stop=r"^\}")),
        Edit("docs/man/xl.cfg.5.pod.in", "libxl/xl-cfg.pod.j2",
             Anchor("the '=back' closing '=head4 PVH guest options'",
                    (r"^=head4 PVH guest options", r"^=back"), where="before")),
    ),
}


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
                  comment_lines=list(lines))


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


def compose(spec: ChangeSpec, plan: FlagPlan, read: Callable[[str], str],
            env: jinja2.Environment, *, identity: str, signoff: bool) -> tuple[PatchText, ...]:
    """The patches of SPEC: READ(path) gives a file of the base tree (InputError if absent)."""
    state: dict[str, str] = {}

    def get(path: str) -> str:
        if path not in state:
            state[path] = read(path)
        return state[path]

    out = []
    for patch in spec.patches:
        touched: list[str] = []
        for part in patch.parts:
            touched += _apply_part(part, spec, plan, env, get, state)
        message = render(env, "commit-message.txt.j2", subject=patch.subject, body=patch.body,
                         signoff=signoff, identity=identity)
        out.append(PatchText(patch.subject, message.rstrip("\n") + "\n",
                             tuple(sorted((p, state[p]) for p in set(touched)))))
    return tuple(out)


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
