"""C tokens and integer constant expressions, evaluated in one target's types (C99 6.4, 6.5, 6.6).

Pure: ``tokenize`` splits text into preprocessing tokens (C99 6.4);
``evaluate`` computes the value of a fully macro-expanded token list as the
target's C compiler would (integer promotions and the usual arithmetic
conversions of C99 6.3.1, unsigned wrap-around, casts, ``sizeof`` and
``_Alignof`` through the ``TypeEnv``), or raises ``NotConstant``.  As gcc and
clang, it also folds ``__builtin_offsetof(T, a.b[2].c)`` and ``sizeof`` of a
member reached from a null pointer constant cast to a pointer type,
``sizeof(((T *)0)->m[0])`` (the idiom of io/ring.h's ``__CONST_RING_SIZE``);
such a ``Designation`` is valid only as the operand of ``sizeof``.

The one evaluator of the engine: the macros' values (``macros``) and the
constants of declarations (``declare``: array bounds, bit-field widths,
enumerators) are both computed here; the target's ``long`` and plain
``char`` come from the arch registry (``abi.arch``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from .. import arch as arches
from .cdefs import IntType, TypeEnv
from .cint import (
    INT,
    LLONG,
    UINT,
    ULLONG,
    NotConstant,
    Value,
    char_constant,
    common_type,
    integer_constant,
    promote,
    wrap,
)

_TOKEN = re.compile(r"""
    (?P<ws>[ \t\r\n\f\v]+)
  | (?P<num>\.?[0-9](?:[eEpP][+-]|[0-9A-Za-z_.])*)
  | (?P<ident>[A-Za-z_$][A-Za-z0-9_$]*(?!['"]))
  | (?P<char>(?:L|u|U)?'(?:\\.|[^\\'\n])*')
  | (?P<str>(?:u8|L|u|U)?"(?:\\.|[^\\"\n])*")
  | (?P<punct>%:%:|\.\.\.|<<=|>>=|->|\+\+|--|<<|>>|<=|>=|==|!=|&&|\|\||[*/%+\-&^|]=
             |\#\#|<:|:>|<%|%>|%:|[\[\](){}.&*+\-~!/%<>^|?:;=,\#])
  | (?P<other>.)
""", re.VERBOSE | re.DOTALL)


@dataclass(frozen=True)
class Token:
    """A preprocessing token; ``space`` tells whether white space preceded it (for ``#``)."""

    text: str
    kind: str  # "num" | "ident" | "char" | "str" | "punct" | "other" | "placemarker"
    space: bool = False
    hide: frozenset[str] = frozenset()


def tokenize(text: str) -> tuple[Token, ...]:
    """The preprocessing tokens of TEXT (C99 6.4), each marked with preceding white space."""
    out: list[Token] = []
    space = False
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup or "other"
        if kind == "ws":
            space = True
            continue
        out.append(Token(m.group(), kind, space))
        space = False
    return tuple(out)


# Binary operators by precedence (C99 6.5.5-6.5.14), lowest first.
_BINARY = {"||": 1, "&&": 2, "|": 3, "^": 4, "&": 5, "==": 6, "!=": 6,
           "<": 7, ">": 7, "<=": 7, ">=": 7, "<<": 8, ">>": 8,
           "+": 9, "-": 9, "*": 10, "/": 10, "%": 10}
_TYPE_WORDS = {"void", "char", "short", "int", "long", "signed", "unsigned", "_Bool",
               "float", "double", "__signed__", "__signed"}
_QUALIFIERS = {"const", "volatile", "restrict", "__const", "__const__", "__volatile__",
               "__restrict", "__restrict__", "__extension__"}
_ALIGNOF = {"_Alignof", "alignof", "__alignof__", "__alignof"}


@dataclass(frozen=True)
class TypeName:
    """A parsed type name: base spelling, its integer type if any, pointer depth, array dims."""

    spelling: str  # "unsigned long", "struct start_info", "xen_ulong_t"
    integer: IntType | None
    pointers: int = 0
    dims: tuple[int, ...] = ()


@dataclass(frozen=True)
class Designation:
    """``(T *)N`` and the lvalues reached from it by ``->m``, ``.m``, ``[i]`` and ``*``.

    ``spelling`` is the pointer type of the cast ("struct x_sring *"); ``path``
    the steps applied to it in the ``TypeEnv.sizeof_member`` notation, where
    ``p->m`` is ``p[0].m`` and ``*p`` is ``p[0]`` (C99 6.5.2.1, 6.5.2.3).  Not a
    value: only ``sizeof`` may look at one (C99 6.6p6, 6.5.3.4p2)."""

    spelling: str
    path: str = ""


Operand = Value | Designation


def evaluate(tokens: Sequence[Token], env: TypeEnv) -> Value:
    """The value of TOKENS (already macro-expanded) as a C integer constant expression."""
    return _Parser(tokens, env).parse()


class _Parser:
    """Precedence climbing over tokens; ``live`` is False inside unevaluated operands."""

    def __init__(self, tokens: Sequence[Token], env: TypeEnv) -> None:
        self.toks = [t for t in tokens if t.kind != "placemarker"]
        self.pos = 0
        self.env = env
        self.live = True
        target = arches.get(env.arch)
        self.long_size = target.long_size
        self.char_signed = target.char_signed

    # -- token helpers
    def peek(self, offset: int = 0) -> str | None:
        i = self.pos + offset
        return self.toks[i].text if i < len(self.toks) else None

    def take(self, text: str | None = None) -> Token:
        if self.pos >= len(self.toks):
            raise NotConstant("unexpected end of expression")
        tok = self.toks[self.pos]
        if text is not None and tok.text != text:
            raise NotConstant(f"expected {text!r}, got {tok.text!r}")
        self.pos += 1
        return tok

    def parse(self) -> Value:
        if not self.toks:
            raise NotConstant("empty expression")
        value = self.conditional()
        if self.pos != len(self.toks):
            raise NotConstant(f"unexpected {self.toks[self.pos].text!r}")
        return rvalue(value)

    # -- expressions
    def conditional(self) -> Operand:
        first = self.binary(1)
        if self.peek() != "?":
            return first
        cond = rvalue(first)
        self.take("?")
        live = self.live
        self.live = live and cond.value != 0
        then = rvalue(self.conditional())  # C99 6.5.15: the middle operand is an expression
        self.take(":")
        self.live = live and cond.value == 0
        other = rvalue(self.conditional())
        self.live = live
        typ = common_type(then.type, other.type)
        return Value(wrap((then if cond.value else other).value, typ), typ)

    def binary(self, min_prec: int) -> Operand:
        first = self.operand()
        op = self.peek()
        prec = _BINARY.get(op or "")
        if prec is None or prec < min_prec:
            return first
        left = rvalue(first)
        while True:
            op = self.peek()
            prec = _BINARY.get(op or "")
            if prec is None or prec < min_prec:
                return left
            self.take()
            live = self.live
            if op == "&&":
                self.live = live and left.value != 0
            elif op == "||":
                self.live = live and left.value == 0
            right = rvalue(self.binary(prec + 1))
            self.live = live
            left = self.apply(op or "", left, right)

    def apply(self, op: str, a: Value, b: Value) -> Value:
        if op in ("&&", "||"):
            truth = (a.value != 0 and b.value != 0) if op == "&&" else (a.value != 0 or b.value != 0)
            return Value(int(truth), INT)
        if op in ("<<", ">>"):
            return self.shift(op, a, b)
        typ = common_type(a.type, b.type)
        x, y = wrap(a.value, typ), wrap(b.value, typ)
        if op in ("==", "!=", "<", ">", "<=", ">="):
            truth = {"==": x == y, "!=": x != y, "<": x < y, ">": x > y,
                     "<=": x <= y, ">=": x >= y}[op]
            return Value(int(truth), INT)
        if op in ("/", "%"):
            if y == 0:
                if self.live:
                    raise NotConstant("division by zero")
                return Value(0, typ)
            q = abs(x) // abs(y) * (1 if (x < 0) == (y < 0) else -1)  # C99 6.5.5: truncation
            return Value(wrap(q if op == "/" else x - q * y, typ), typ)
        result = {"+": x + y, "-": x - y, "*": x * y, "&": x & y, "|": x | y, "^": x ^ y}[op]
        return Value(wrap(result, typ), typ)

    def shift(self, op: str, a: Value, b: Value) -> Value:
        typ = promote(a.type)  # C99 6.5.7: the type of the promoted left operand
        count = wrap(b.value, promote(b.type))
        if count < 0 or count >= typ.bits:
            if self.live:
                raise NotConstant(f"shift count {count} out of range")
            return Value(0, typ)
        x = wrap(a.value, typ)
        return Value(wrap(x << count if op == "<<" else x >> count, typ), typ)

    def unary(self) -> Value:
        return rvalue(self.operand())

    def operand(self) -> Operand:
        """A unary expression (C99 6.5.3): a Value, or a Designation for ``sizeof``."""
        tok = self.peek()
        if tok in ("+", "-", "~", "!"):
            self.take()
            v = self.unary()
            typ = promote(v.type)
            if tok == "!":
                return Value(int(v.value == 0), INT)
            result = {"+": v.value, "-": -v.value, "~": ~v.value}[tok]
            return Value(wrap(result, typ), typ)
        if tok == "__extension__":
            self.take()
            return self.operand()
        if tok == "*":
            self.take()
            return self.index(self.operand(), 0)
        if tok == "sizeof" or tok in _ALIGNOF:
            return self.size_or_align(tok)
        if tok == "(":
            type_name = self.try_type_name(1)
            if type_name is not None:
                if self.peek() == "{":
                    raise NotConstant("compound literal")
                return self.cast(type_name, self.operand())
        return self.postfix(self.primary())

    def postfix(self, base: Operand, arrows: bool = True) -> Operand:
        """``->m`` (if ARROWS), ``.m`` and ``[i]`` applied to BASE (C99 6.5.2), a Designation."""
        while self.peek() in (("->", ".", "[") if arrows else (".", "[")):
            op = self.take().text
            if op == "[":
                i = rvalue(self.conditional())
                self.take("]")
                base = self.index(base, i.value)
                continue
            name = self.take()
            if name.kind != "ident":
                raise NotConstant(f"expected a member name after {op}, got {name.text!r}")
            if op == "->":
                base = self.index(base, 0)
            if not isinstance(base, Designation):
                raise NotConstant(f"member access .{name.text} on a value")
            base = Designation(base.spelling, f"{base.path}.{name.text}")
        return base

    def index(self, base: Operand, i: int) -> Designation:
        if not isinstance(base, Designation):
            raise NotConstant("indirection through an integer")
        return Designation(base.spelling, f"{base.path}[{i}]")

    def size_or_align(self, word: str) -> Value:
        self.take()
        size_t = IntType(self.long_size, False)
        type_name = self.try_type_name(1) if self.peek() == "(" else None
        if type_name is None:
            if word != "sizeof":
                raise NotConstant(f"{word} of an expression")
            live, self.live = self.live, False
            operand = self.operand()
            self.live = live
            if isinstance(operand, Value):
                return Value(operand.type.size, size_t)
            size = self.env.sizeof_member(operand.spelling, operand.path)
            if size is None:
                raise NotConstant(f"sizeof of {operand.spelling} {operand.path or '(pointer)'}")
            return Value(size, size_t)
        value = self.sizeof(type_name) if word == "sizeof" else self.alignof(type_name, word)
        return Value(value, size_t)

    def primary(self) -> Operand:
        tok = self.take()
        if tok.text == "(":
            value = self.conditional()
            if self.peek() == ",":
                raise NotConstant("comma operator")
            self.take(")")
            return value
        if tok.kind == "num":
            return integer_constant(tok.text, self.long_size)
        if tok.kind == "char":
            return char_constant(tok.text, self.char_signed)
        if tok.text == "__builtin_offsetof":
            return self.offsetof()
        if tok.kind == "ident":
            number = self.env.enumerator(tok.text)
            if number is None:
                raise NotConstant(f"not a constant: {tok.text}")
            for typ in (INT, UINT, LLONG, ULLONG):  # gcc: int if it fits, else the enum's type
                if wrap(number, typ) == number:
                    return Value(number, typ)
            raise NotConstant(f"enumerator out of range: {tok.text}")
        raise NotConstant(f"unexpected {tok.text!r}")

    def offsetof(self) -> Value:
        """gcc's ``__builtin_offsetof(type-name, member-designator)``, after the keyword."""
        self.take("(")
        type_name = self.try_type_name(0, close=",")
        if type_name is None or type_name.pointers or type_name.dims:
            raise NotConstant("__builtin_offsetof of a non-record type")
        first = self.take()
        if first.kind != "ident":
            raise NotConstant(f"__builtin_offsetof: expected a member name, got {first.text!r}")
        end = self.postfix(Designation(type_name.spelling, "." + first.text), arrows=False)
        assert isinstance(end, Designation)  # postfix keeps a Designation one
        designator = end.path[1:]  # "a.b[2].c"
        self.take(")")
        offset = self.env.offsetof(type_name.spelling, designator)
        if offset is None:
            raise NotConstant(f"offsetof({type_name.spelling}, {designator}) unknown")
        size_t = IntType(self.long_size, False)
        return Value(wrap(offset, size_t), size_t)  # gcc and clang accept indexes out of bounds

    # -- types
    def cast(self, type_name: TypeName, operand: Operand) -> Operand:
        if type_name.pointers and not type_name.dims and isinstance(operand, Value):
            # (T *)N: the pointer itself is no integer constant, its members' sizes are
            return Designation(f"{type_name.spelling} {'*' * type_name.pointers}")
        if not isinstance(operand, Value):
            raise NotConstant(f"cast of an address to {type_name.spelling}")
        if type_name.pointers or type_name.dims or type_name.integer is None:
            raise NotConstant(f"cast to {type_name.spelling}")
        typ = type_name.integer
        if type_name.spelling == "_Bool":
            return Value(int(operand.value != 0), typ)
        return Value(wrap(operand.value, typ), typ)

    def try_type_name(self, start: int, close: str = ")") -> TypeName | None:
        """Parse a type name and CLOSE, START tokens on from the cursor, if it is one, else None."""
        save = self.pos
        self.pos += start
        words: list[str] = []
        while self.peek() in _QUALIFIERS:
            self.take()
        base = self.base_type(words)
        if base is None:
            self.pos = save
            return None
        pointers, dims = self.abstract_declarator()
        if self.peek() != close:
            raise NotConstant(f"unsupported type name {base.spelling} ...")
        self.take(close)
        return TypeName(base.spelling, base.integer, pointers, dims)

    def base_type(self, words: list[str]) -> TypeName | None:
        tok = self.peek()
        if tok in ("struct", "union", "enum"):
            self.take()
            spelling = f"{tok} {self.take().text}"
            return TypeName(spelling, self.env.int_type(spelling) if tok == "enum" else None)
        while self.peek() in _TYPE_WORDS or (words and self.peek() in _QUALIFIERS):
            words.append(self.take().text)
        if words:
            return self.keyword_type(words)
        if tok is None or self.toks[self.pos].kind != "ident" or self.env.enumerator(tok) is not None:
            return None
        integer = self.env.int_type(tok)
        if integer is None and self.env.sizeof(tok) is None:
            return None
        self.take()
        return TypeName(tok, integer)

    def keyword_type(self, words: list[str]) -> TypeName:
        w = [x.replace("__signed__", "signed").replace("__signed", "signed") for x in words
             if x not in _QUALIFIERS]
        if "float" in w or "double" in w or "void" in w:
            return TypeName(" ".join(w), None)
        unsigned = "unsigned" in w
        if "_Bool" in w:
            return TypeName("_Bool", IntType(1, False))
        if "char" in w:
            signed = not unsigned and ("signed" in w or self.char_signed)
            name = ("unsigned char" if unsigned else "signed char" if "signed" in w else "char")
            return TypeName(name, IntType(1, signed))
        longs = w.count("long")
        size, name = ((2, "short") if "short" in w else (4, "int") if longs == 0
                      else (self.long_size, "long") if longs == 1 else (8, "long long"))
        return TypeName(("unsigned " if unsigned else "") + name, IntType(size, not unsigned))

    def abstract_declarator(self) -> tuple[int, tuple[int, ...]]:
        pointers = 0
        while self.peek() == "*":
            self.take()
            pointers += 1
            while self.peek() in _QUALIFIERS:
                self.take()
        dims: list[int] = []
        while self.peek() == "[":
            self.take()
            dims.append(rvalue(self.conditional()).value)
            self.take("]")
        return pointers, tuple(dims)

    def sizeof(self, t: TypeName) -> int:
        if t.pointers:
            size: int | None = self.long_size  # ILP32 / LP64 on every Xen arch
        elif t.integer is not None:
            size = t.integer.size
        else:
            size = self.env.sizeof(t.spelling)
        if size is None:
            raise NotConstant(f"sizeof unknown type {t.spelling}")
        for d in t.dims:
            size *= d
        return size

    def alignof(self, t: TypeName, word: str) -> int:
        if t.pointers:
            return self.long_size
        align = self.env.alignof(t.spelling)
        if align is None and t.integer is not None:
            align = t.integer.size
        if align is None:
            raise NotConstant(f"alignof unknown type {t.spelling}")
        # gcc's __alignof__ is the preferred alignment: 8 for 8-byte scalars on i386,
        # where C11 _Alignof gives the ABI alignment 4.
        if word.startswith("__") and t.integer is not None and t.integer.size == 8:
            return 8
        return align


def rvalue(operand: Operand) -> Value:
    """OPERAND as an integer value: a Designation is an address, no integer constant."""
    if isinstance(operand, Designation):
        raise NotConstant(f"address {operand.spelling} {operand.path} in an integer expression")
    return operand
