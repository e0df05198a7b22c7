"""AST mutation operators for Python: plausible one-edit bugs in a reference solution.

Each operator yields ``(node, replacement)`` sites inside the function body (never the signature or docstring).
A mutant replaces only that node's source segment with the unparsed replacement, so the rest of the code keeps its
formatting and comments: chosen and rejected differ only where the bug is. Mutants that do not parse, or equal the
original, are discarded. Whether a mutant is a *bug* is decided by running the tests (:mod:`themis_rm.sandbox`),
not here.
"""

from __future__ import annotations

import ast
import copy
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

Site = tuple[ast.AST, ast.AST]

_COMPARE_FLIPS = {
    ast.Lt: ast.GtE,
    ast.GtE: ast.Lt,
    ast.Gt: ast.LtE,
    ast.LtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}
_ARITHMETIC_SWAPS = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.FloorDiv,
    ast.FloorDiv: ast.Mult,
    ast.Div: ast.Mult,
    ast.Mod: ast.FloorDiv,
}


@dataclass(frozen=True)
class Mutant:
    """One mutated program: which operator, where (``line:col``), and the full code."""

    operator: str
    site: str
    code: str


def _is_int_constant(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool)


def _shift(node: ast.expr, delta: int) -> ast.expr:
    """``node + 1`` / ``node - 1``, folding integer constants so ``n - 1`` stays readable."""
    if _is_int_constant(node):
        return ast.Constant(node.value + delta)
    return ast.BinOp(copy.deepcopy(node), ast.Add() if delta > 0 else ast.Sub(), ast.Constant(abs(delta)))


def comparison_flip(tree: ast.AST) -> Iterator[Site]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _COMPARE_FLIPS:
            new = copy.deepcopy(node)
            new.ops = [_COMPARE_FLIPS[type(node.ops[0])]()]
            yield node, new


def off_by_one(tree: ast.AST) -> Iterator[Site]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "range" and node.args:
            index = 1 if len(node.args) >= 2 else 0
            for delta in (-1, 1):
                new = copy.deepcopy(node)
                new.args[index] = _shift(node.args[index], delta)
                yield node, new
        elif isinstance(node, ast.Slice):
            for bound in ("lower", "upper"):
                if getattr(node, bound) is not None:
                    new = copy.deepcopy(node)
                    setattr(new, bound, _shift(getattr(node, bound), 1))
                    yield node, new
        elif isinstance(node, ast.Compare) and _is_int_constant(node.comparators[-1]):
            new = copy.deepcopy(node)
            new.comparators[-1] = _shift(node.comparators[-1], 1)
            yield node, new


def arithmetic_swap(tree: ast.AST) -> Iterator[Site]:
    for node in ast.walk(tree):
        if isinstance(node, (ast.BinOp, ast.AugAssign)) and type(node.op) in _ARITHMETIC_SWAPS:
            if isinstance(node, ast.BinOp) and isinstance(node.left, ast.Constant) and isinstance(node.left.value, str):
                continue  # string concatenation: "-" would be a type error, not a plausible bug
            new = copy.deepcopy(node)
            new.op = _ARITHMETIC_SWAPS[type(node.op)]()
            yield node, new


def boolean_swap(tree: ast.AST) -> Iterator[Site]:
    for node in ast.walk(tree):
        if isinstance(node, ast.BoolOp):
            new = copy.deepcopy(node)
            new.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
            yield node, new
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            yield node, copy.deepcopy(node.operand)


def dropped_condition(tree: ast.AST) -> Iterator[Site]:
    for node in ast.walk(tree):
        if isinstance(node, (ast.If, ast.While)) and not isinstance(node.test, ast.Constant):
            if isinstance(node, ast.If):
                yield node.test, ast.Constant(True)
            if isinstance(node, ast.If) and node.orelse:
                new = copy.deepcopy(node)
                new.orelse = []
                yield node, new
        elif isinstance(node, ast.BoolOp) and len(node.values) > 1:
            new = copy.deepcopy(node)
            new.values = new.values[:-1]
            yield node, new if len(new.values) > 1 else new.values[0]


def wrong_return(tree: ast.AST) -> Iterator[Site]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Return) and node.value is not None:
            value = node.value
            if isinstance(value, ast.Constant) and isinstance(value.value, bool):
                replacement = ast.Constant(not value.value)
            elif isinstance(value, ast.Constant) and isinstance(value.value, (int, float)):
                replacement = ast.Constant(value.value + 1)
            else:
                replacement = ast.Constant(None)
            yield value, replacement


def swapped_arguments(tree: ast.AST) -> Iterator[Site]:
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and len(node.args) >= 2
            and not any(isinstance(a, ast.Starred) for a in node.args)
        ) and ast.dump(node.args[0]) != ast.dump(node.args[1]):
            new = copy.deepcopy(node)
            new.args[0], new.args[1] = new.args[1], new.args[0]
            yield node, new


OPERATORS: dict[str, Callable[[ast.AST], Iterator[Site]]] = {
    "comparison_flip": comparison_flip,
    "off_by_one": off_by_one,
    "arithmetic_swap": arithmetic_swap,
    "boolean_swap": boolean_swap,
    "dropped_condition": dropped_condition,
    "wrong_return": wrong_return,
    "swapped_arguments": swapped_arguments,
}


def function_body(tree: ast.Module, entry_point: str) -> list[ast.stmt]:
    """Statements of ``entry_point`` minus its docstring: the only place mutations may land."""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == entry_point:
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
                body = body[1:]
            return body
    return []


def mutants(code: str, entry_point: str, operators: list[str] | None = None) -> list[Mutant]:
    """Every distinct, parseable one-edit mutant of ``entry_point``'s body, operator by operator."""
    tree = ast.parse(code)
    offsets = _line_offsets(code)
    seen = {code}
    found: list[Mutant] = []
    for name in operators or list(OPERATORS):
        for statement in function_body(tree, entry_point):
            for node, replacement in OPERATORS[name](statement):
                start = offsets[node.lineno - 1] + _char_col(code, node.lineno, node.col_offset)
                end = offsets[node.end_lineno - 1] + _char_col(code, node.end_lineno, node.end_col_offset)
                text = _operator_patch(code, offsets, node, replacement) or ast.unparse(replacement)
                if isinstance(node, ast.stmt):  # unparse starts at column 0: indent the following lines
                    text = text.replace("\n", "\n" + " " * _char_col(code, node.lineno, node.col_offset))
                expected = _dump_with(tree, node, replacement)
                mutated = code[:start] + text + code[end:]
                if _dump(mutated) != expected:  # precedence changed the meaning: parenthesise, only then
                    mutated = code[:start] + f"({text})" + code[end:]
                if mutated in seen or _dump(mutated) != expected:
                    continue
                seen.add(mutated)
                found.append(Mutant(name, f"{node.lineno}:{node.col_offset}", mutated))
    return found


_SYMBOLS = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.FloorDiv: "//",
    ast.Div: "/",
    ast.Mod: "%",
    ast.Lt: "<",
    ast.GtE: ">=",
    ast.Gt: ">",
    ast.LtE: "<=",
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.And: "and",
    ast.Or: "or",
}


def _operator_patch(code: str, offsets: list[int], node: ast.AST, replacement: ast.AST) -> str | None:
    """The node's own text with only its operator symbol swapped, when the mutation is an operator swap."""
    if type(replacement) is not type(node):
        return None
    if isinstance(node, ast.BinOp):
        pairs = [(node.left, node.right, node.op, replacement.op)]
    elif isinstance(node, ast.AugAssign):
        pairs = [(node.target, node.value, node.op, replacement.op)]
    elif isinstance(node, ast.Compare) and len(node.ops) == 1:
        pairs = [(node.left, node.comparators[0], node.ops[0], replacement.ops[0])]
    elif (
        isinstance(node, ast.BoolOp)
        and isinstance(replacement, ast.BoolOp)
        and len(replacement.values) == len(node.values)
    ):
        pairs = [(a, b, node.op, replacement.op) for a, b in itertools.pairwise(node.values)]
    else:
        return None
    if type(pairs[0][2]) is type(pairs[0][3]):
        return None  # operands changed, not the operator

    def at(line: int, col: int) -> int:
        return offsets[line - 1] + _char_col(code, line, col)

    start, end = at(node.lineno, node.col_offset), at(node.end_lineno, node.end_col_offset)
    pieces, cursor = [], start
    for left, right, old, new in pairs:
        gap_start, gap_end = at(left.end_lineno, left.end_col_offset), at(right.lineno, right.col_offset)
        gap = code[gap_start:gap_end]
        symbol = _SYMBOLS[type(old)] + ("=" if isinstance(node, ast.AugAssign) else "")
        if symbol not in gap:
            return None
        pieces += [
            code[cursor:gap_start],
            gap.replace(symbol, _SYMBOLS[type(new)] + symbol[len(_SYMBOLS[type(old)]) :], 1),
        ]
        cursor = gap_end
    return "".join(pieces) + code[cursor:end]


def _dump_with(tree: ast.AST, node: ast.AST, replacement: ast.AST) -> str:
    """``ast.dump`` of ``tree`` with ``node`` swapped for ``replacement`` (restored afterwards)."""
    for parent in ast.walk(tree):
        for name, value in ast.iter_fields(parent):
            if value is node:
                setattr(parent, name, replacement)
                try:
                    return ast.dump(tree)
                finally:
                    setattr(parent, name, node)
            if isinstance(value, list) and any(item is node for item in value):
                index = next(i for i, item in enumerate(value) if item is node)
                value[index] = replacement
                try:
                    return ast.dump(tree)
                finally:
                    value[index] = node
    raise ValueError("mutation site not found in its tree")


def _line_offsets(code: str) -> list[int]:
    offsets, total = [], 0
    for line in code.splitlines(keepends=True):
        offsets.append(total)
        total += len(line)
    return offsets or [0]


def _char_col(code: str, lineno: int, byte_col: int) -> int:
    """AST columns count UTF-8 bytes; string slicing needs characters."""
    line = code.splitlines(keepends=True)[lineno - 1]
    return len(line.encode("utf-8")[:byte_col].decode("utf-8", errors="ignore"))


def _dump(code: str) -> str | None:
    try:
        return ast.dump(ast.parse(code))
    except SyntaxError:
        return None
