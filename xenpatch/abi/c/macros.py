"""Macro expansion (C99 6.10.3) and evaluation of every object-like macro defined under public/.

Pure.  ``Expander`` rescans with hide sets (Prosser's algorithm, the one the
C standard's rules describe): object- and function-like macros, ``#`` and
``##`` (with placemarkers), ``__VA_ARGS__`` and gcc's ``, ## __VA_ARGS__``.
``evaluate_macros`` expands each macro name alone, as a use after the last
header, and evaluates the result with ``cexpr.evaluate`` in the target's
types; ``find_redefinitions`` reports names given two values.

``evaluate_macros`` remembers, per process, what each name expanded to with
the definitions it looked up, and what each expansion evaluated to with the
questions it asked the target's types and their answers (``Memo``): another
arch, view or snapshot whose definitions and types give the same answers gets
the same value without expanding or evaluating again.  This is exact (an
entry is used only when every lookup and question it depends on gets the same
answer) and is what keeps the macro stage of a patched tree or of the next
commit of a history small (``bench/abi_history.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..model import Macro
from .cdefs import Define, IntType, TypeEnv
from .cexpr import NotConstant, Token, evaluate, tokenize

# Bound on the tokens one expansion may produce: headers under review are untrusted.
MAX_TOKENS = 100_000


@dataclass(frozen=True)
class Undef:
    """An ``#undef NAME`` seen by the preprocessor (``cpp -dD`` prints them in place)."""

    name: str
    header: str
    line: int


def build_table(defines: Sequence[Define | Undef]) -> dict[str, Define]:
    """The macros in force after all DEFINES, as cpp leaves them: the later definition wins."""
    table: dict[str, Define] = {}
    for d in defines:
        if isinstance(d, Undef):
            table.pop(d.name, None)
        else:
            table[d.name] = d
    return table


class Expander:
    """Fully expands token lists against one table of macros."""

    def __init__(self, table: Mapping[str, Define]) -> None:
        self.table = table
        self.produced = 0
        self._bodies: dict[int, tuple[Token, ...]] = {}
        # name -> the definition found (or None) by each lookup since the caller reset it
        self.looked_up: dict[str, Define | None] = {}

    def body(self, d: Define) -> tuple[Token, ...]:
        key = id(d)
        if key not in self._bodies:
            self._bodies[key] = tokenize(d.body)
        return self._bodies[key]

    def expand(self, tokens: Sequence[Token]) -> list[Token]:
        out: list[Token] = []
        stack = list(reversed(tokens))
        while stack:
            tok = stack.pop()
            if tok.kind == "ident":
                d = self.table.get(tok.text)
                self.looked_up[tok.text] = d
            else:
                d = None
            if d is None or tok.text in tok.hide:
                out.append(tok)
                continue
            if d.params is None:
                hide = tok.hide | {tok.text}
            elif stack and stack[-1].text == "(":
                args, rparen = _collect_args(stack)
                hide = (tok.hide & rparen.hide) | {tok.text}
            else:
                out.append(tok)  # a function-like macro name not followed by '('
                continue
            body = self.substitute(d, args if d.params is not None else [], hide, tok.space)
            self.produced += len(body)
            if self.produced > MAX_TOKENS:
                raise NotConstant(f"expansion of {tok.text} too large")
            stack.extend(reversed(body))
        return out

    def substitute(self, d: Define, args: list[list[Token]], hide: frozenset[str],
                   space: bool) -> list[Token]:
        """The replacement list of D with ARGS substituted, # and ## applied, HIDE added."""
        index = _param_index(d.params or ())
        actuals = _bind(d, args) if d.params is not None else []
        expanded: dict[int, list[Token]] = {}
        body = self.body(d)
        out: list[Token] = []
        i = 0
        while i < len(body):
            tok = body[i]
            nxt = body[i + 1] if i + 1 < len(body) else None
            if tok.text in ("#", "%:") and d.params is not None and nxt and nxt.text in index:
                out.append(_stringize(actuals[index[nxt.text]], tok.space))
                i += 2
            elif tok.text in ("##", "%:%:") and nxt is not None and out:
                if nxt.text in index:
                    p = index[nxt.text]
                    _paste_param(out, actuals[p], variadic=p == len(actuals) - 1 and _is_variadic(d))
                else:
                    _paste(out, [nxt])
                i += 2
            elif tok.text in index:
                p = index[tok.text]
                if nxt is not None and nxt.text in ("##", "%:%:"):
                    seq = actuals[p] or [Token("", "placemarker")]
                else:
                    if p not in expanded:
                        expanded[p] = self.expand(actuals[p])
                    seq = expanded[p]
                out.extend(_respace(seq, tok.space))
                i += 1
            else:
                out.append(tok)
                i += 1
        result = [Token(t.text, t.kind, t.space, t.hide | hide) for t in out
                  if t.kind != "placemarker"]
        return _respace(result, space)


def _collect_args(stack: list[Token]) -> tuple[list[list[Token]], Token]:
    """Pop '(' args ')' from STACK (top = next token); return the arguments and the ')'."""
    stack.pop()
    args: list[list[Token]] = [[]]
    depth = 0
    while stack:
        tok = stack.pop()
        if tok.text == ")" and depth == 0:
            return args, tok
        if tok.text == "," and depth == 0:
            args.append([])
            continue
        depth += {"(": 1, ")": -1}.get(tok.text, 0)
        args[-1].append(tok)
    raise NotConstant("unterminated macro call")


def _is_variadic(d: Define) -> bool:
    return bool(d.params) and (d.params or ("",))[-1].endswith("...")


def _param_index(params: Sequence[str]) -> dict[str, int]:
    index: dict[str, int] = {}
    for i, p in enumerate(params):
        name = "__VA_ARGS__" if p == "..." else p.removesuffix("...").strip()
        index[name] = i
    return index


def _bind(d: Define, args: list[list[Token]]) -> list[list[Token]]:
    """The actual argument of each parameter of D (variadic ones joined with commas)."""
    params = d.params or ()
    if not params:
        if args != [[]]:
            raise NotConstant(f"{d.name} takes no arguments")
        return []
    if _is_variadic(d):
        fixed = len(params) - 1
        if len(args) < fixed:
            raise NotConstant(f"{d.name}: too few arguments")
        rest: list[Token] = []
        for j, arg in enumerate(args[fixed:]):
            rest.extend(([Token(",", "punct")] if j else []) + arg)
        return [*args[:fixed], rest]
    if len(args) != len(params):
        raise NotConstant(f"{d.name}: {len(args)} arguments, {len(params)} expected")
    return args


def _respace(seq: Sequence[Token], space: bool) -> list[Token]:
    if not seq:
        return []
    first = seq[0]
    return [Token(first.text, first.kind, space, first.hide), *seq[1:]]


def _stringize(arg: Sequence[Token], space: bool) -> Token:
    """C99 6.10.3.2: spelling of the argument, one space where white space was, quotes escaped."""
    parts: list[str] = []
    for j, t in enumerate(arg):
        text = t.text.replace("\\", "\\\\").replace('"', '\\"') if t.kind in ("str", "char") else t.text
        parts.append((" " if j and t.space else "") + text)
    return Token('"' + "".join(parts) + '"', "str", space)


def _paste_param(out: list[Token], actual: list[Token], variadic: bool) -> None:
    # gcc: ", ## __VA_ARGS__" drops the comma when the variable arguments are empty.
    if variadic and out[-1].text == ",":
        if not actual:
            out.pop()
        else:
            out.extend(actual)
        return
    _paste(out, actual or [Token("", "placemarker")])


def _paste(out: list[Token], rhs: list[Token]) -> None:
    """C99 6.10.3.3: glue the last token of OUT to the first of RHS."""
    lhs = out.pop()
    if lhs.kind == "placemarker":
        out.extend(rhs)
        return
    if rhs[0].kind == "placemarker":
        out.append(lhs)
        out.extend(rhs[1:])
        return
    glued = tokenize(lhs.text + rhs[0].text)
    if len(glued) != 1:
        raise NotConstant(f"pasting {lhs.text!r} and {rhs[0].text!r} is not a token")
    out.append(Token(glued[0].text, glued[0].kind, lhs.space, lhs.hide & rhs[0].hide))
    out.extend(rhs[1:])


def value_of(name: str, expander: Expander, env: TypeEnv) -> int | None:
    """The integer value of a use of NAME, or None when it is not an integer constant expression."""
    expander.produced = 0
    try:
        return evaluate(expander.expand([Token(name, "ident")]), env).value
    except (NotConstant, RecursionError):
        return None


def _signature(d: Define | None) -> tuple[tuple[str, ...] | None, str] | None:
    """What of a definition an expansion depends on (not where it is)."""
    return None if d is None else (d.params, d.body)


class _Asking:
    """ENV, writing down every question asked and its answer (for ``Memo``)."""

    def __init__(self, env: TypeEnv) -> None:
        self.env, self.arch = env, env.arch
        self.asked: list[tuple[str, tuple[str, ...], object]] = []

    def _ask(self, what: str, *args: str) -> Any:
        answer = getattr(self.env, what)(*args)
        self.asked.append((what, args, _plain(answer)))
        return answer

    def int_type(self, spelling: str) -> Any:
        return self._ask("int_type", spelling)

    def sizeof(self, spelling: str) -> Any:
        return self._ask("sizeof", spelling)

    def alignof(self, spelling: str) -> Any:
        return self._ask("alignof", spelling)

    def enumerator(self, name: str) -> Any:
        return self._ask("enumerator", name)

    def offsetof(self, spelling: str, designator: str) -> Any:
        return self._ask("offsetof", spelling, designator)

    def sizeof_member(self, spelling: str, path: str) -> Any:
        return self._ask("sizeof_member", spelling, path)


Lookups = tuple[tuple[str, Any], ...]
Questions = tuple[tuple[str, tuple[str, ...], object], ...]


class Memo:
    """What names expanded to and what expansions evaluated to, with what each depended on."""

    # A name seen with more variants than this (different definitions per arch or
    # snapshot) keeps the newest ones; past MAX_ENTRIES the memo starts again.
    VARIANTS = 4
    MAX_ENTRIES = 400_000

    def __init__(self) -> None:
        self.expansions: dict[str, list[tuple[Lookups, tuple[Token, ...] | None]]] = {}
        self.values: dict[tuple[str, tuple[str, ...]], list[tuple[Questions, int | None]]] = {}
        self.size = 0

    def expansion(self, name: str, expander: Expander) -> tuple[Lookups, tuple[Token, ...] | None]:
        """The tokens NAME expands to in EXPANDER's table (None: it does not expand to a
        token list, e.g. its expansion is too large), after the definitions they depend on."""
        for entry in self.expansions.get(name, ()):
            if _same_definitions(entry[0], expander.table):
                return entry
        expander.produced = 0
        expander.looked_up = {}
        try:
            found: tuple[Token, ...] | None = tuple(
                t for t in expander.expand([Token(name, "ident")]) if t.kind != "placemarker")
        except (NotConstant, RecursionError):
            found = None
        lookups = tuple((n, _signature(d)) for n, d in expander.looked_up.items())
        self._add(self.expansions.setdefault(name, []), (lookups, found))
        return lookups, found

    def value(self, tokens: tuple[Token, ...], env: TypeEnv) -> tuple[Questions, int | None]:
        """The value of the expression TOKENS on ENV's target and types (it depends on
        their spelling only: a token's kind follows from it), after the questions it asked."""
        entries = self.values.setdefault((env.arch, tuple(t.text for t in tokens)), [])
        for entry in entries:
            if _same_answers(entry[0], env):
                return entry
        asking = _Asking(env)
        try:
            found: int | None = evaluate(tokens, asking).value
        except (NotConstant, RecursionError):
            found = None
        self._add(entries, (tuple(asking.asked), found))
        return tuple(asking.asked), found

    def _add(self, entries: list[Any], entry: Any) -> None:
        if self.size > self.MAX_ENTRIES:
            self.expansions.clear()
            self.values.clear()
            self.size = 0
        entries.insert(0, entry)
        del entries[self.VARIANTS:]
        self.size += 1


MEMO = Memo()

# What the value of one name depended on, in plain values (``marshal``): for another
# process (``reuse``).  The definitions its expansion looked up, the questions its
# evaluation asked the types with their answers (``_plain``), the value.
Shortcut = tuple[Lookups, Questions, int | None]


def evaluate_macros(defines: Sequence[Define | Undef], env: TypeEnv,
                    memo: Memo | None = None, known: Mapping[str, Shortcut] | None = None,
                    learned: dict[str, Shortcut] | None = None) -> tuple[Macro, ...]:
    """Every object-like macro defined in a public header, with its value on ENV's target
    (MEMO: what earlier calls worked out, this process's by default; KNOWN: shortcuts of
    an earlier process, each used when what it depended on gets the same answers;
    LEARNED: gets the shortcut of every name)."""
    memo = memo or MEMO
    table = build_table(defines)
    expander = Expander(table)
    macros = []
    for name, d in table.items():
        if d.params is None and d.header:
            shortcut = known.get(name) if known else None
            if shortcut is None or not (_same_definitions(shortcut[0], table)
                                        and _same_answers(shortcut[1], env)):
                lookups, tokens = memo.expansion(name, expander)
                questions, value = ((), None) if tokens is None else memo.value(tokens, env)
                shortcut = (lookups, questions, value)
            if learned is not None:
                learned[name] = shortcut
            macros.append(Macro(name, shortcut[2], d.body, d.header, d.line))
    return tuple(sorted(macros, key=lambda m: m.name))


def _plain(answer: object) -> object:
    """An answer about the types as a plain value (``marshal``): an IntType as (size,
    signed)."""
    return (answer.size, answer.signed) if isinstance(answer, IntType) else answer


def _same_definitions(lookups: Lookups, table: Mapping[str, Define]) -> bool:
    """Whether every name of LOOKUPS has the definition it had (or still none)."""
    return all(_signature(table.get(n)) == sig for n, sig in lookups)


def _same_answers(questions: Questions, env: TypeEnv) -> bool:
    """Whether ENV gives every question of QUESTIONS the answer it got."""
    return all(_plain(getattr(env, what)(*args)) == answer for what, args, answer in questions)


def find_redefinitions(defines: Sequence[Define | Undef], env: TypeEnv) -> tuple[Macro, ...]:
    """Earlier definitions that a later ``#define`` of the same name replaced with another value.

    An ``#undef`` in between makes the new definition intentional (as cpp,
    which then does not warn); so does an identical body.  Only integer values
    are compared: "one name, two values".  Each earlier definition is returned
    once, as a Macro with its own value, header and line."""
    table = build_table(defines)
    current: dict[str, Define] = {}
    found: dict[tuple[str, str, int], Macro] = {}
    for d in defines:
        if isinstance(d, Undef):
            current.pop(d.name, None)
            continue
        prev = current.get(d.name)
        current[d.name] = d
        if (prev is None or d.params is not None or prev.params is not None or not d.header
                or not prev.header or prev.body == d.body
                or (prev.header, prev.line) == (d.header, d.line)):
            continue
        key = (prev.name, prev.header, prev.line)
        if key in found:
            continue
        old = value_of(d.name, Expander({**table, d.name: prev}), env)
        new = value_of(d.name, Expander({**table, d.name: d}), env)
        if old is not None and new is not None and old != new:
            found[key] = Macro(prev.name, old, prev.body, prev.header, prev.line)
    return tuple(sorted(found.values(), key=lambda m: (m.name, m.header, m.line)))
