"""Turn a pycparser AST into laid-out C types: the model's TypeInfos and the arch's TypeEnv.

Walks the file-scope declarations in order: typedefs, struct/union/enum
definitions (also those nested in records or typedefs), evaluating array
bounds, bit-field widths and enumerator values with the one evaluator of C
integer constant expressions (``cexpr``, which the macros use too) in the
target's types (C11 6.6, 6.3.1.8).  Function bodies (``static inline`` helpers in io/ring.h) are
skipped.  pycparser nodes do not leave this module.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from pycparser import c_ast, c_generator

from ..model import Enumerator, TypeInfo
from .cdefs import IntType
from .cexpr import evaluate, tokenize
from .cint import INT, NotConstant
from .layout import (
    Aligned,
    Array,
    CType,
    Enum,
    Function,
    LayoutError,
    Member,
    Pointer,
    Record,
    Scalar,
    Target,
    Void,
    enum_type,
    lay_out,
)


class DeclareError(Exception):
    """A declaration the engine cannot lay out; ``file``/``line`` locate it."""

    def __init__(self, file: str, line: int, message: str) -> None:
        super().__init__(f"{file}:{line}: {message}")
        self.file, self.line, self.message = file, line, message


class Declarations:
    """The types of one translation unit on one target; also the macro evaluator's TypeEnv."""

    def __init__(self, target: Target, header_of: Callable[[str], str]) -> None:
        self.arch = target.arch
        self.target = target
        self.header_of = header_of
        self.typedefs: dict[str, tuple[CType, str]] = {}
        self.tags: dict[tuple[str, str], CType] = {}
        self.enumerators: dict[str, tuple[int, IntType]] = {}
        self.types: dict[str, TypeInfo] = {}
        self._done: dict[int, CType] = {}
        self._spelled: dict[str, CType | None] | None = None  # type_named, once visited

    @classmethod
    def walked(cls, target: Target, header_of: Callable[[str], str],
               typedefs: dict[str, tuple[CType, str]], tags: dict[tuple[str, str], CType],
               enumerators: dict[str, tuple[int, IntType]],
               types: dict[str, TypeInfo]) -> Declarations:
        """The Declarations a walk that found these tables leaves (``reuse``: another
        pass's, shared: nothing changes them once the walk is over)."""
        out = cls(target, header_of)
        out.typedefs, out.tags, out.enumerators, out.types = typedefs, tags, enumerators, types
        out._spelled = {}
        return out

    # -- the walk ------------------------------------------------------------------
    def visit(self, ast: c_ast.FileAST) -> None:
        self._spelled = None
        for node in ast.ext:
            try:
                if isinstance(node, c_ast.Typedef):
                    self._typedef(node)
                elif isinstance(node, c_ast.Decl) and not isinstance(node.type, c_ast.FuncDecl):
                    self.resolve(node.type)
                elif isinstance(node, c_ast.Pragma) and node.string.split("(")[0].strip() == "pack":
                    raise LayoutError(f"#pragma {node.string} is not supported")
            except (LayoutError, ArithmeticError, ValueError, RecursionError) as e:
                coord = node.coord
                raise DeclareError(coord.file if coord else "", coord.line if coord else 0,
                                   str(e)) from e
        # Measured: the macro evaluator asks for the same few spellings thousands of times.
        self._spelled = {}

    def _typedef(self, node: c_ast.Typedef) -> None:
        ctype, spelling, _ = self.resolve(node.type)
        inner = node.type.type if isinstance(node.type, c_ast.TypeDecl) else None
        if isinstance(inner, (c_ast.Struct, c_ast.Union, c_ast.Enum)) and inner.name is None \
                and node.name not in self.types:
            self._register(node.name, ctype, inner.coord)
        self.typedefs[node.name] = (ctype, spelling)

    def _register(self, name: str, ctype: CType, coord: c_ast.Coord | None) -> None:
        header = self.header_of(coord.file) if coord else ""
        if not header or name in self.types:
            return
        line = coord.line if coord else 0
        if isinstance(ctype, Enum):
            self.types[name] = TypeInfo(name, "enum", ctype.size or 4, ctype.align, header, line,
                                        enumerators=tuple(Enumerator(n, v)
                                                          for n, v in ctype.enumerators))
        elif isinstance(ctype, Record) and ctype.size is not None:
            self.types[name] = TypeInfo(name, ctype.kind, ctype.size, ctype.align, header, line,
                                        fields=ctype.fields)

    # -- types ---------------------------------------------------------------------
    def resolve(self, node: c_ast.Node) -> tuple[CType, str, bool]:
        """(type, spelling, inline) of a type node; inline: an untagged record written here."""
        prefix, suffix, ctype, inline = self._resolve(node)
        return ctype, (prefix + suffix).strip(), inline

    def _resolve(self, node: c_ast.Node) -> tuple[str, str, CType, bool]:
        if isinstance(node, (c_ast.TypeDecl, c_ast.Typename)):
            prefix, suffix, ctype, inline = self._resolve(node.type)
            quals = " ".join(q for q in node.quals if q in ("const", "volatile"))
            return (f"{quals} {prefix}".strip() if quals else prefix), suffix, ctype, inline
        if isinstance(node, c_ast.PtrDecl):
            prefix, suffix, ctype, _ = self._resolve(node.type)
            size = self.target.pointer_size
            ptr = Pointer(ctype, size, size)
            if isinstance(ctype, Function):
                return f"{prefix} (*){suffix}", "", ptr, False
            return (prefix + "*" if prefix.endswith("*") else prefix + " *"), suffix, ptr, False
        if isinstance(node, c_ast.ArrayDecl):
            prefix, suffix, ctype, inline = self._resolve(node.type)
            count = None if node.dim is None else self.const(node.dim)[0]
            if count is not None and count < 0:
                raise LayoutError(f"negative array size {count}")
            # An array of a record written here (tagged or not) carries its elements' fields.
            inline = inline or _defines_record(node.type)
            return prefix, f"[{'' if count is None else count}]" + suffix, Array(ctype, count), inline
        if isinstance(node, c_ast.FuncDecl):
            prefix, suffix, _, _ = self._resolve(node.type)
            return prefix + suffix, "()", Function(), False
        if isinstance(node, c_ast.AttributedType):
            prefix, suffix, ctype, inline = self._resolve(node.type)
            return prefix, suffix, self._attributes(ctype, node.attributes), inline
        if isinstance(node, c_ast.IdentifierType):
            return (" ".join(node.names), "", self._named(node.names), False)
        if isinstance(node, (c_ast.Struct, c_ast.Union)):
            return self._record(node)
        if isinstance(node, c_ast.Enum):
            return self._enum(node)
        raise LayoutError(f"unsupported type construct {type(node).__name__}")

    def _named(self, names: list[str]) -> CType:
        if len(names) == 1 and names[0] in self.typedefs:
            return self.typedefs[names[0]][0]
        if names == ["void"]:
            return Void()
        base = self.target.base(tuple(names))
        if base is None:
            raise LayoutError(f"unknown type {' '.join(names)}")
        return base

    def _attributes(self, ctype: CType, specs: list[c_ast.Node]) -> CType:
        for spec in specs:
            for attr in spec.attributes:
                if attr.name == "aligned":
                    text = (attr.arguments or "").strip().strip("()")
                    ctype = Aligned(ctype, int(text, 0) if text else self.target.aligned_default)
                elif attr.name == "packed":
                    raise LayoutError("__attribute__((packed)) is not supported")
        return ctype

    def _record(self, node: c_ast.Struct | c_ast.Union) -> tuple[str, str, CType, bool]:
        kind = "struct" if isinstance(node, c_ast.Struct) else "union"
        spelling = f"{kind} {node.name}" if node.name else f"{kind} {{...}}"
        if node.decls is None:
            if node.name is None:
                raise LayoutError(f"{kind} without tag or members")
            return spelling, "", self._tag(kind, node.name), False
        if id(node) in self._done:
            return spelling, "", self._done[id(node)], node.name is None
        record = self._tag(kind, node.name) if node.name else Record(kind, None)
        if not isinstance(record, Record) or record.size is not None:
            raise LayoutError(f"redefinition of {spelling}")
        members = [self._member(d) for d in node.decls if isinstance(d, c_ast.Decl)]
        lay_out(record, members, self.target)
        own = self._attributes(record, node.attributes or [])  # struct [[gnu::aligned(N)]] s
        if isinstance(own, Aligned) and record.size is not None:
            record.align = own.align
            record.size = -(-record.size // own.align) * own.align
        self._done[id(node)] = record
        if node.name:
            self._register(spelling, record, node.coord)
        return spelling, "", record, node.name is None

    def _tag(self, kind: str, name: str) -> CType:
        key = (kind, name)
        if key not in self.tags:
            self.tags[key] = Record(kind, name) if kind != "enum" else Enum(name)
        return self.tags[key]

    def _member(self, decl: c_ast.Decl) -> Member:
        ctype, spelling, inline = self.resolve(decl.type)
        for align in decl.align or ():
            ctype = Aligned(ctype, self.const(align.alignment)[0])
        bits = None if decl.bitsize is None else self.const(decl.bitsize)[0]
        return Member(decl.name or "", ctype, spelling, bits, inline)

    def _enum(self, node: c_ast.Enum) -> tuple[str, str, CType, bool]:
        if node.values is None:
            if node.name is None:
                raise LayoutError("enum without tag or enumerators")
            return f"enum {node.name}", "", self._tag("enum", node.name), False
        if id(node) in self._done:
            return self._enum_spelling(node), "", self._done[id(node)], False
        enum = self._tag("enum", node.name) if node.name else Enum(None)
        assert isinstance(enum, Enum)
        values: list[tuple[str, int]] = []
        nxt, ntype = 0, INT
        for e in node.values.enumerators:
            if e.value is not None:
                nxt, ntype = self.const(e.value)
            values.append((e.name, nxt))
            # C11 6.7.2.2: enumeration constants are ints (gcc: wider when they must be)
            fits_int = -(1 << 31) <= nxt < (1 << 31)
            self.enumerators[e.name] = (nxt, INT if fits_int else ntype)
            nxt += 1
        enum_type(enum, values, self.target)
        self._done[id(node)] = enum
        name = self._enum_spelling(node)
        self._register(name, enum, node.coord)
        return name, "", enum, False

    def _enum_spelling(self, node: c_ast.Enum) -> str:
        if node.name:
            return f"enum {node.name}"
        coord = node.coord
        return f"enum {self.header_of(coord.file) if coord else ''}:{coord.line if coord else 0}"

    # -- integer constant expressions -----------------------------------------------------
    def const(self, node: c_ast.Node) -> tuple[int, IntType]:
        """Evaluate an integer constant expression: (value, type) in the target's types, by
        the macros' evaluator (``cexpr``) over the expression's C text, with these
        declarations as its TypeEnv."""
        # Most are a lone constant ("[16]"), its text at hand, and the same few again and
        # again: one without names means the same on every pass of the target (_LITERALS).
        text = node.value if isinstance(node, c_ast.Constant) else _C_TEXT.visit(node)
        known = _LITERALS.get((self.target, text))
        if known is not None:
            return known
        tokens = tokenize(text)
        try:
            found = evaluate(tokens, self)
        except NotConstant as e:
            raise LayoutError(str(e)) from e
        if not any(t.kind == "ident" for t in tokens):
            if len(_LITERALS) > 100_000:
                _LITERALS.clear()
            _LITERALS[(self.target, text)] = (found.value, found.type)
        return found.value, found.type

    # -- TypeEnv (xenpatch.abi.c.cdefs) -------------------------------------------------
    def int_type(self, spelling: str) -> IntType | None:
        ctype = self.type_named(spelling)
        return None if ctype is None else _int_type_of(ctype)

    def sizeof(self, spelling: str) -> int | None:
        ctype = self.type_named(spelling)
        return None if ctype is None else ctype.size

    def alignof(self, spelling: str) -> int | None:
        ctype = self.type_named(spelling)
        return None if ctype is None or ctype.size is None else ctype.align

    def enumerator(self, name: str) -> int | None:
        found = self.enumerators.get(name)
        return None if found is None else found[0]

    def offsetof(self, spelling: str, designator: str) -> int | None:
        found = self._designate(spelling, "." + designator.strip(), through_pointers=False)
        return None if found is None else found[0]

    def sizeof_member(self, spelling: str, path: str) -> int | None:
        found = self._designate(spelling, path, through_pointers=True)
        return None if found is None else found[1].size

    def _designate(self, spelling: str, path: str,
                   through_pointers: bool) -> tuple[int, CType] | None:
        """(offset, type) of PATH (".m" and "[i]" steps, as in TypeEnv) in an object of type
        SPELLING; once a step goes through a pointer the offset means nothing."""
        ctype = self.type_named(spelling)
        offset, pos = 0, 0
        while ctype is not None and pos < len(path):
            step = _STEP.match(path, pos)
            if step is None:
                return None
            pos = step.end()
            while isinstance(ctype, Aligned):
                ctype = ctype.base
            if step.group(1) is not None:
                # bit-fields are not in members: offsetof/sizeof of one is an error in C
                if not isinstance(ctype, Record) or step.group(1) not in ctype.members:
                    return None
                delta, ctype = ctype.members[step.group(1)]
                offset += delta
            elif isinstance(ctype, Array) and ctype.elem.size is not None:
                offset += int(step.group(2)) * ctype.elem.size
                ctype = ctype.elem
            elif through_pointers and isinstance(ctype, Pointer):
                ctype = ctype.target
            else:
                return None
        return None if ctype is None else (offset, ctype)

    def type_named(self, spelling: str) -> CType | None:
        """The type a C type name spells ("unsigned long", "struct foo *", "uint32_t[4]")."""
        if self._spelled is None:
            return self._type_named(spelling)
        if spelling not in self._spelled:
            self._spelled[spelling] = self._type_named(spelling)
        return self._spelled[spelling]

    def _type_named(self, spelling: str) -> CType | None:
        words = _TYPE_TOKEN.findall(spelling)
        if not words or "".join(words).replace(" ", "") != re.sub(r"\s+", "", spelling):
            return None
        base: list[str] = []
        i = 0
        while i < len(words) and re.match(r"[A-Za-z_]", words[i]):
            if words[i] not in ("const", "volatile"):
                base.append(words[i])
            i += 1
        try:
            if base and base[0] in ("struct", "union", "enum"):
                if len(base) != 2 or (base[0], base[1]) not in self.tags:
                    return None
                ctype: CType = self.tags[(base[0], base[1])]
            else:
                ctype = self._named(base)
        except LayoutError:
            return None
        for tok in words[i:]:
            if tok == "*":
                ctype = Pointer(ctype, self.target.pointer_size, self.target.pointer_size)
            elif tok.startswith("["):
                inner = tok[1:-1].strip()
                ctype = Array(ctype, int(inner, 0) if inner else None)
            else:
                return None
        return ctype


# const() of texts without names, by target: the same on every pass of this process (the
# enumerators of cpufeatureset.h, array sizes), whatever the headers around them.
_LITERALS: dict[tuple[Target, str], tuple[int, IntType]] = {}
_C_TEXT = c_generator.CGenerator()  # an expression node back to C text, for ``cexpr``
_STEP = re.compile(r"\s*(?:\.\s*([A-Za-z_]\w*)|\[\s*(-?\d+)\s*\])\s*")
_TYPE_TOKEN = re.compile(r"[A-Za-z_]\w*|\*|\[\s*(?:0[xX][0-9a-fA-F]+|\d+)?\s*\]")


def _defines_record(node: c_ast.Node) -> bool:
    """Whether the element type NODE of an array is a struct/union defined in place."""
    while isinstance(node, (c_ast.TypeDecl, c_ast.AttributedType)):
        node = node.type
    return isinstance(node, (c_ast.Struct, c_ast.Union)) and node.decls is not None


def _int_type_of(ctype: CType) -> IntType | None:
    if isinstance(ctype, Aligned):
        return _int_type_of(ctype.base)
    if isinstance(ctype, Scalar):
        return ctype.int_type
    if isinstance(ctype, Enum) and ctype.size is not None:
        return ctype.int_type
    return None
