"""Plain-text rendering of an ABI model (``xenpatch abi dump --format text``)."""

from __future__ import annotations

from .model import AbiModel, ArchModel, Field, TypeInfo


def model_text(model: AbiModel) -> str:
    """Every arch: header counts, failures, then types with their layout and macros."""
    src = model.source
    out = [f"ABI of {src.tree}" + (f" @ {src.rev}" if src.rev else "") + f" ({src.profile})"]
    for arch in model.arches:
        out.extend(_arch_text(arch))
    return "\n".join(out) + "\n"


def _arch_text(arch: ArchModel) -> list[str]:
    out = ["", f"== {arch.arch}: {len(arch.headers)} headers, {len(arch.types)} types, "
           f"{len(arch.macros)} macros, {len(arch.families)} families, "
           f"{len(arch.failed)} failed, {len(arch.not_applicable)} not applicable"]
    out.extend(f"failed: {f.header}: {f.error}" for f in arch.failed)
    for t in arch.types:
        out.extend(_type_text(t))
    out.append("")
    for m in arch.macros:
        value = "?" if m.value is None else f"{m.value} ({m.value:#x})" if m.value >= 0 else str(m.value)
        out.append(f"#define {m.name} {m.expr}  = {value}  [{m.header}:{m.line}]")
    return out


def _type_text(t: TypeInfo) -> list[str]:
    out = [f"{t.name}  size {t.size} align {t.align}  [{t.header}:{t.line}]"]
    if t.kind == "enum":
        out.extend(f"    {e.name} = {e.value}" for e in t.enumerators)
    else:
        out.extend(_fields_text(t.fields, 1))
    return out


def _fields_text(fields: tuple[Field, ...], depth: int) -> list[str]:
    out = []
    pad = "    " * depth
    for f in fields:
        where = f"+{f.offset}"
        if f.bit_size is not None:
            where = f"bit {f.bit_offset}:{f.bit_size}"
        extra = f" (elements of {f.elem_size})" if f.elem_size is not None else ""
        out.append(f"{pad}{where:<10} {f.type} {f.name}".rstrip() + f"  [{f.size}]{extra}")
        if f.fields:
            out.extend(_fields_text(f.fields, depth + 1))
    return out
