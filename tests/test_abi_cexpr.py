"""One constant-expression evaluator: declarations and macros answer as the target compiler does.

``abi/c/declare.py`` once had its own evaluator, which disagreed with the
macros' (``abi/c/cexpr.py``) on the expressions below: it evaluated both
operands of ``||``, ``&&`` and ``?:`` (division by zero, or a shift past the
width, in the operand C does not evaluate ended the header), converted to
``_Bool`` by truncation, and knew no ``sizeof`` of an expression.  Each is
now computed once, by ``cexpr``, in an enumerator (a declaration) and in a
macro, and both must equal the value the arch's compiler puts in an object
file (read back from the ELF, nothing runs).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from probe import read_symbols

from xenpatch import proc
from xenpatch.abi import arch as arches
from xenpatch.abi.c.cdefs import Define
from xenpatch.abi.c.declare import Declarations
from xenpatch.abi.c.layout import TARGETS
from xenpatch.abi.c.macros import evaluate_macros
from xenpatch.abi.c.parse import parse

RECORD = "struct s { char c; long l; };"
# Where the two evaluators disagreed (declare.py's answer in the comment), then neighbours.
EXPRESSIONS = [
    "1 || (1/0)",  # ZeroDivisionError
    "1 ? 2 : (1/0)",  # ZeroDivisionError
    "0 && (1/0)",  # ZeroDivisionError
    "0 ? 1 % 0 : 3",  # ZeroDivisionError
    "0 && (1 << 40)",  # "shift by 40"
    "1 ? 0 : 1 << 40",  # "shift by 40"
    "(_Bool)2",  # 2
    "(_Bool)256",  # 256
    "sizeof(1)",  # "sizeof of an expression is not supported"
    "sizeof 1 + 1",  # same
    "sizeof(((struct s *)0)->l)",  # same
    "sizeof(long) + sizeof(char *)",
    "sizeof(struct s) * 2",
    "_Alignof(struct s)",
    "(char)200",
    "'\\377'",
    "-1 >> 1",
    "(unsigned char)300",
    "0x80000000 >> 31",
    "-0x7fffffff - 1",
]


def _declared(arch: str) -> list[int]:
    d = Declarations(TARGETS[arch], lambda f: "t.h")
    enums = "".join(f"enum e{i} {{ V{i} = ({e}) }};" for i, e in enumerate(EXPRESSIONS))
    d.visit(parse(RECORD + enums, "t.h"))
    return [d.types[f"enum e{i}"].enumerators[0].value for i in range(len(EXPRESSIONS))]


def _macros(arch: str) -> list[int | None]:
    d = Declarations(TARGETS[arch], lambda f: "t.h")
    d.visit(parse(RECORD, "t.h"))
    defines = [Define(f"M{i}", None, e, "t.h", i + 1) for i, e in enumerate(EXPRESSIONS)]
    values = {m.name: m.value for m in evaluate_macros(defines, d)}
    return [values[f"M{i}"] for i in range(len(EXPRESSIONS))]


def _compiled(arch: str, tmp: Path) -> list[int]:
    cc = arches.get(arch).compiler
    if shutil.which(cc[0]) is None:
        pytest.skip(f"{cc[0]} not installed")
    lines = [RECORD] + [f"enum e{i} {{ V{i} = ({e}) }};\nconst long long xp_v{i} = V{i};"
                        for i, e in enumerate(EXPRESSIONS)]
    src, obj = tmp / f"{arch}.c", tmp / f"{arch}.o"
    src.write_text("\n".join(lines) + "\n")
    run = proc.run([*cc, "-std=gnu11", "-w", "-c", "-o", str(obj), str(src)])
    assert run.returncode == 0, run.stderr
    symbols = read_symbols(obj.read_bytes())
    return [int.from_bytes(symbols[f"xp_v{i}"], "little", signed=True)
            for i in range(len(EXPRESSIONS))]


@pytest.mark.parametrize("arch", arches.NAMES)
def test_declarations_and_macros_answer_as_the_compiler(arch: str, tmp_path: Path) -> None:
    compiler = dict(zip(EXPRESSIONS, _compiled(arch, tmp_path), strict=True))
    assert dict(zip(EXPRESSIONS, _declared(arch), strict=True)) == compiler
    assert dict(zip(EXPRESSIONS, _macros(arch), strict=True)) == compiler
    assert compiler["1 || (1/0)"] == 1 and compiler["1 ? 2 : (1/0)"] == 2  # the two


def test_division_by_zero_that_is_evaluated_is_a_declaration_error() -> None:
    """Not a ZeroDivisionError escaping: the header fails with a message naming the line."""
    from xenpatch.abi.c.declare import DeclareError

    d = Declarations(TARGETS["x86_64"], lambda f: "t.h")
    with pytest.raises(DeclareError, match=r"^t\.h:1: division by zero$"):
        d.visit(parse("enum e { A = 0 || (1/0) };", "t.h"))
