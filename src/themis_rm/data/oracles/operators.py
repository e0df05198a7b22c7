"""Semantics-preserving rewrites that make a reference solution worse on one criterion.

Each operator maps a parsed module to zero or more rewritten modules (one per site), for one criterion:

* Runtime_Efficiency — ``sorted_to_insertion_sort`` (a stable O(n²) sort for ``sorted(x)``),
  ``set_membership_to_list`` (a set used only for ``in`` becomes a list), ``join_to_concat`` (``"".join`` becomes
  repeated concatenation), ``dict_get_to_scan`` (``d.get(k, v)`` becomes a scan of the items),
  ``memo_removed`` (``functools.cache``/``lru_cache`` decorators dropped);
* Memory_Efficiency — ``generator_to_list`` (a generator argument of a reducing call is materialised),
  ``iterator_to_list`` (``range``/``zip``/``enumerate``/``map``/``filter``/``reversed`` loops iterate a list);
* Readability_Maintainability — ``ambiguous_names`` (locals renamed ``l``, ``O``, ``I``, ...), ``dead_code``
  (an unused computed local), ``nested_conditions`` (``if a and b:`` becomes two nested ifs),
  ``explicit_bool_compare`` (``if x:`` becomes ``if bool(x) == True:``).

Both sides of a pair are printed with ``ast.unparse``, so they differ only where the operator wrote. Nothing here
decides whether a rewrite is worse, or even equivalent: the oracles (:mod:`.verify`) run the tests and measure.
Security operators live in :mod:`.security` (they apply to security-relevant seed tasks, not to HumanEval).
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass

Rewrite = Callable[[ast.Module, str], Iterator[ast.Module]]


@dataclass(frozen=True)
class Variant:
    """One rewritten program: the criterion it worsens, the operator, and both sides as printed."""

    criterion: str
    operator: str
    site: int  # which match of the operator (0-based)
    reference: str
    code: str


def _function(tree: ast.Module, entry_point: str) -> ast.FunctionDef | None:
    return next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == entry_point), None)


def _sites(tree: ast.Module, entry_point: str, match: Callable[[ast.AST], bool]) -> list[int]:
    """Indices (in ``ast.walk`` order of the entry point) of the nodes ``match`` accepts."""
    function = _function(tree, entry_point)
    if function is None:
        return []
    return [i for i, node in enumerate(ast.walk(function)) if match(node)]


def _rewrite_each(
    tree: ast.Module, entry_point: str, match: Callable[[ast.AST], bool], apply: Callable[[ast.Module, ast.AST], bool]
) -> Iterator[ast.Module]:
    """One copy of ``tree`` per matching node, with ``apply(copy, node)`` done on that node (skipped if False)."""
    for index in _sites(tree, entry_point, match):
        fresh = copy.deepcopy(tree)
        node = list(ast.walk(_function(fresh, entry_point)))[index]
        if apply(fresh, node):
            yield ast.fix_missing_locations(fresh)


def _call_to(node: ast.AST, name: str) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name


def _add_helper(tree: ast.Module, source: str) -> None:
    """Put a module-level helper (and its imports) before the first function."""
    helper = ast.parse(source).body
    at = next((i for i, n in enumerate(tree.body) if isinstance(n, ast.FunctionDef | ast.ClassDef)), len(tree.body))
    tree.body[at:at] = helper


# ------------------------------------------------------------------------------------------------ runtime
_INSERTION_SORT = """
def _sorted_slowly(items):
    out = []
    for item in items:
        i = len(out)
        while i > 0 and item < out[i - 1]:
            i -= 1
        out.insert(i, item)
    return out
"""


def sorted_to_insertion_sort(tree: ast.Module, entry_point: str) -> Iterator[ast.Module]:
    def match(node):
        return _call_to(node, "sorted") and len(node.args) == 1 and not node.keywords

    def apply(fresh, node):
        node.func = ast.Name("_sorted_slowly", ast.Load())
        _add_helper(fresh, _INSERTION_SORT)
        return True

    yield from _rewrite_each(tree, entry_point, match, apply)


def _set_like(value: ast.AST) -> bool:
    return isinstance(value, ast.Set | ast.SetComp) or _call_to(value, "set")


def set_membership_to_list(tree: ast.Module, entry_point: str) -> Iterator[ast.Module]:
    """A local assigned a set once and only ever used as the right side of ``in``/``not in``."""
    function = _function(tree, entry_point)
    if function is None:
        return
    names = {}
    for node in ast.walk(function):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            names.setdefault(node.targets[0].id, []).append(node.value)
    for name, values in names.items():
        if len(values) != 1 or not _set_like(values[0]) or not _only_membership(function, name):
            continue
        fresh = copy.deepcopy(tree)
        for node in ast.walk(_function(fresh, entry_point)):
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) and node.targets[0].id == name:
                node.value = _as_list(node.value)
        yield ast.fix_missing_locations(fresh)


def _only_membership(function: ast.FunctionDef, name: str) -> bool:
    uses = [n for n in ast.walk(function) if isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load)]
    in_tests = {
        id(c)
        for node in ast.walk(function)
        if isinstance(node, ast.Compare)
        for op, c in zip(node.ops, node.comparators, strict=True)
        if isinstance(op, ast.In | ast.NotIn) and isinstance(c, ast.Name) and c.id == name
    }
    return bool(uses) and all(id(use) in in_tests for use in uses)


def _as_list(value: ast.AST) -> ast.AST:
    if isinstance(value, ast.Set):
        return ast.List(value.elts, ast.Load())
    if isinstance(value, ast.SetComp):
        return ast.ListComp(value.elt, value.generators)
    return ast.Call(ast.Name("list", ast.Load()), value.args, value.keywords)  # set(x) -> list(x)


_CONCAT = """
import functools
import operator


def _concat_slowly(parts):
    return functools.reduce(operator.add, parts, '')
"""


def join_to_concat(tree: ast.Module, entry_point: str) -> Iterator[ast.Module]:
    def match(node):
        return (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "join"
            and isinstance(node.func.value, ast.Constant)
            and node.func.value.value == ""
            and len(node.args) == 1
        )

    def apply(fresh, node):
        replacement = ast.parse("_concat_slowly(x)", mode="eval").body
        replacement.args = node.args
        node.func, node.args = replacement.func, replacement.args
        _add_helper(fresh, _CONCAT)
        return True

    yield from _rewrite_each(tree, entry_point, match, apply)


def dict_get_to_scan(tree: ast.Module, entry_point: str) -> Iterator[ast.Module]:
    def match(node):
        return (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and isinstance(node.func.value, ast.Name)
            and len(node.args) == 2
        )

    def apply(fresh, node):
        scan = ast.parse("next((v for k, v in D.items() if k == KEY), DEFAULT)", mode="eval").body
        mapping, (key, default) = node.func.value, node.args
        scan = _substitute(scan, {"D": mapping, "KEY": key, "DEFAULT": default})
        node.func, node.args, node.keywords = scan.func, scan.args, scan.keywords
        return True

    yield from _rewrite_each(tree, entry_point, match, apply)


def _substitute(tree: ast.AST, names: dict[str, ast.AST]) -> ast.AST:
    class Swap(ast.NodeTransformer):
        def visit_Name(self, node):
            return copy.deepcopy(names[node.id]) if node.id in names else node

    return Swap().visit(tree)


def memo_removed(tree: ast.Module, entry_point: str) -> Iterator[ast.Module]:
    def memo(decorator: ast.AST) -> bool:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
        return name in ("cache", "lru_cache")

    for index, node in enumerate(tree.body):
        if isinstance(node, ast.FunctionDef) and any(memo(d) for d in node.decorator_list):
            fresh = copy.deepcopy(tree)
            fresh.body[index].decorator_list = [d for d in fresh.body[index].decorator_list if not memo(d)]
            yield fresh


# ------------------------------------------------------------------------------------------------- memory
_REDUCERS = {"sum", "any", "all", "max", "min", "sorted", "set", "tuple", "list", "frozenset", "dict"}
_LAZY = {"range", "zip", "enumerate", "map", "filter", "reversed"}


def generator_to_list(tree: ast.Module, entry_point: str) -> Iterator[ast.Module]:
    def match(node):
        return (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in _REDUCERS
            and len(node.args) == 1
            and isinstance(node.args[0], ast.GeneratorExp)
        )

    def apply(fresh, node):
        generator = node.args[0]
        node.args[0] = ast.ListComp(generator.elt, generator.generators)
        return True

    yield from _rewrite_each(tree, entry_point, match, apply)


def iterator_to_list(tree: ast.Module, entry_point: str) -> Iterator[ast.Module]:
    def match(node):
        return (
            isinstance(node, ast.For) and isinstance(node.iter, ast.Call) and getattr(node.iter.func, "id", "") in _LAZY
        )

    def apply(fresh, node):
        node.iter = ast.Call(ast.Name("list", ast.Load()), [node.iter], [])
        return True

    yield from _rewrite_each(tree, entry_point, match, apply)


# -------------------------------------------------------------------------------------------- readability
_AMBIGUOUS = ("l", "O", "I", "l1", "O1", "I1", "ll", "OO")


def ambiguous_names(tree: ast.Module, entry_point: str) -> Iterator[ast.Module]:
    """Every local the function assigns renamed at once; names that are parameters anywhere inside it (its own,
    which callers may name, and those of nested functions and lambdas, which are other scopes) are kept."""
    function = _function(tree, entry_point)
    if function is None:
        return
    params = {node.arg for node in ast.walk(function) if isinstance(node, ast.arg)}
    assigned = sorted(
        {n.id for n in ast.walk(function) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)} - params
    )
    taken = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    names = [name for name in _AMBIGUOUS if name not in taken]
    if not assigned or len(names) < len(assigned):
        return
    mapping = dict(zip(assigned, names, strict=False))
    fresh = copy.deepcopy(tree)
    for node in ast.walk(_function(fresh, entry_point)):
        if isinstance(node, ast.Name) and node.id in mapping:
            node.id = mapping[node.id]
    yield fresh


def dead_code(tree: ast.Module, entry_point: str) -> Iterator[ast.Module]:
    """An unused local computed at the top of the body (after the docstring)."""
    function = _function(tree, entry_point)
    if function is None or not function.args.args:
        return
    fresh = copy.deepcopy(tree)
    body = _function(fresh, entry_point).body
    at = 1 if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) else 0
    first = function.args.args[0].arg
    body[at:at] = ast.parse(f"unused_copy = {first}\ntemp_value = None\n").body
    yield ast.fix_missing_locations(fresh)


def nested_conditions(tree: ast.Module, entry_point: str) -> Iterator[ast.Module]:
    def match(node):
        return (
            isinstance(node, ast.If)
            and not node.orelse
            and isinstance(node.test, ast.BoolOp)
            and isinstance(node.test.op, ast.And)
        )

    def apply(fresh, node):
        first, *rest = node.test.values
        inner = ast.If(rest[0] if len(rest) == 1 else ast.BoolOp(ast.And(), rest), node.body, [])
        node.test, node.body = first, [inner]
        return True

    yield from _rewrite_each(tree, entry_point, match, apply)


def explicit_bool_compare(tree: ast.Module, entry_point: str) -> Iterator[ast.Module]:
    def match(node):
        return isinstance(node, ast.If | ast.While) and not isinstance(node.test, ast.Compare | ast.Constant)

    def apply(fresh, node):
        truth = ast.Call(ast.Name("bool", ast.Load()), [node.test], [])
        node.test = ast.Compare(truth, [ast.Eq()], [ast.Constant(True)])
        return True

    yield from _rewrite_each(tree, entry_point, match, apply)


OPERATORS: dict[str, dict[str, Rewrite]] = {
    "Runtime_Efficiency": {
        "sorted_to_insertion_sort": sorted_to_insertion_sort,
        "set_membership_to_list": set_membership_to_list,
        "join_to_concat": join_to_concat,
        "dict_get_to_scan": dict_get_to_scan,
        "memo_removed": memo_removed,
    },
    "Memory_Efficiency": {"generator_to_list": generator_to_list, "iterator_to_list": iterator_to_list},
    "Readability_Maintainability": {
        "ambiguous_names": ambiguous_names,
        "dead_code": dead_code,
        "nested_conditions": nested_conditions,
        "explicit_bool_compare": explicit_bool_compare,
    },
}


def variants(code: str, entry_point: str, criterion: str) -> list[Variant]:
    """Every distinct rewrite of ``code`` for ``criterion`` (both sides printed by ``ast.unparse``)."""
    tree = ast.parse(code)
    reference = ast.unparse(tree)
    seen = {reference}
    found = []
    for name, rewrite in OPERATORS[criterion].items():
        for site, rewritten in enumerate(rewrite(tree, entry_point)):
            text = ast.unparse(rewritten)
            if text not in seen:
                seen.add(text)
                found.append(Variant(criterion, name, site, reference, text))
    return found
