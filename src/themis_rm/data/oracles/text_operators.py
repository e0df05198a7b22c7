"""Rewrites of C and JavaScript programs, located with tree-sitter and applied as byte-range edits.

The same criteria as the Python operators (:mod:`.operators`), for whole programs in other languages:

* Functional_Correctness — ``comparison_flip`` (``<`` ↔ ``<=``, ``==`` ↔ ``!=``, ...), ``arithmetic_swap``
  (``+`` ↔ ``-``), ``boolean_swap`` (``&&`` ↔ ``||``), ``off_by_one`` (an integer literal in an expression + 1);
* Runtime_Efficiency — C: ``qsort_to_insertion_sort`` (a stable O(n²) sort with qsort's signature),
  ``strlen_into_loop`` (a hoisted ``strlen`` bound recomputed by the loop condition); JavaScript:
  ``set_to_array`` (a Set used only for ``has``/``add`` becomes an array scanned by ``includes``),
  ``sort_to_insertion_sort``;
* Memory_Efficiency — C: ``widened_array`` (an array of a narrow integer type declared ``long long``);
* Security_Hardness — C: ``strncpy_to_strcpy``, ``format_from_input`` (``printf("%s", s)`` → ``printf(s)``);
  JavaScript: ``json_parse_to_eval``;
* Readability_Maintainability — ``braces_removed`` (a one-statement block loses its braces); JavaScript:
  ``strict_to_loose_equality``, ``const_to_var``.

Everything outside the edited bytes is left as written. Whether a rewrite is equivalent, and worse, is for the
oracles (:mod:`.programs`) to measure.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from themis_rm.data.oracles.operators import Variant
from themis_rm.data.syntax import SyntaxChecker

FUNCTIONAL, RUNTIME, MEMORY = "Functional_Correctness", "Runtime_Efficiency", "Memory_Efficiency"
SECURITY, READABILITY = "Security_Hardness", "Readability_Maintainability"
LANGUAGES = ("C", "JavaScript")

Edit = tuple[int, int, str]  # replace bytes [start, end) with the text
Sites = Callable[["Program"], Iterator[list[Edit]]]


@dataclass
class Program:
    """A parsed program: its bytes and tree-sitter root."""

    language: str
    source: bytes
    root: object

    def text(self, node) -> str:
        return self.source[node.start_byte : node.end_byte].decode("utf-8")

    def walk(self, *types: str) -> Iterator:
        stack = [self.root]
        while stack:
            node = stack.pop()
            if not types or node.type in types:
                yield node
            stack.extend(reversed(node.children))

    def apply(self, edits: list[Edit]) -> str:
        out = self.source
        for start, end, replacement in sorted(edits, reverse=True):
            out = out[:start] + replacement.encode("utf-8") + out[end:]
        return out.decode("utf-8")


@functools.cache
def _checker() -> SyntaxChecker:
    return SyntaxChecker()


def parse(source: str, language: str) -> Program:
    return Program(language, source.encode("utf-8"), _checker().parse(source, language).root_node)


# ------------------------------------------------------------------------------------------------ functional
def _operator_swaps(table: dict[str, str]) -> Sites:
    def sites(program: Program) -> Iterator[list[Edit]]:
        for node in program.walk("binary_expression"):
            operator = node.child_by_field_name("operator")
            if operator is not None and operator.type in table:
                yield [(operator.start_byte, operator.end_byte, table[operator.type])]

    return sites


COMPARISONS = {"<": "<=", "<=": "<", ">": ">=", ">=": ">", "==": "!=", "!=": "==", "===": "!==", "!==": "==="}
comparison_flip = _operator_swaps(COMPARISONS)
arithmetic_swap = _operator_swaps({"+": "-", "-": "+"})
boolean_swap = _operator_swaps({"&&": "||", "||": "&&"})


def off_by_one(program: Program) -> Iterator[list[Edit]]:
    for node in program.walk("number_literal", "number"):
        literal = program.text(node)
        if literal.isdigit() and node.parent is not None and node.parent.type == "binary_expression":
            yield [(node.start_byte, node.end_byte, str(int(literal) + 1))]


# ------------------------------------------------------------------------------------------------ runtime
_C_SLOW_SORT = """
static void themis_slow_sort(void *base, size_t count, size_t size, int (*compare)(const void *, const void *)) {
    char *items = base;
    char *held = malloc(size);
    for (size_t i = 1; i < count; i++) {
        memcpy(held, items + i * size, size);
        size_t j = i;
        while (j > 0 && compare(items + (j - 1) * size, held) > 0) {
            memcpy(items + j * size, items + (j - 1) * size, size);
            j--;
        }
        memcpy(items + j * size, held, size);
    }
    free(held);
}
"""
_C_HELPER_INCLUDES = ("#include <stdlib.h>", "#include <string.h>")
_JS_SLOW_SORT = """
function themisSlowSort(items, compare) {
  for (let i = 1; i < items.length; i++) {
    const held = items[i];
    let j = i;
    while (j > 0 && compare(items[j - 1], held) > 0) {
      items[j] = items[j - 1];
      j--;
    }
    items[j] = held;
  }
  return items;
}
"""


def _after_includes(program: Program, helper: str) -> Edit:
    """An edit putting a C helper (and the headers it needs) after the last ``#include``."""
    includes = list(program.walk("preproc_include"))
    at = max((n.end_byte for n in includes), default=0)
    have = {program.text(n).strip() for n in includes}
    headers = "".join(f"{h}\n" for h in _C_HELPER_INCLUDES if h not in have)
    return (at, at, headers + helper)


def _called(node, program: Program, name: str) -> bool:
    function = node.child_by_field_name("function")
    return function is not None and function.type == "identifier" and program.text(function) == name


def qsort_to_insertion_sort(program: Program) -> Iterator[list[Edit]]:
    for node in program.walk("call_expression"):
        if _called(node, program, "qsort"):
            function = node.child_by_field_name("function")
            yield [(function.start_byte, function.end_byte, "themis_slow_sort"), _after_includes(program, _C_SLOW_SORT)]


def strlen_into_loop(program: Program) -> Iterator[list[Edit]]:
    """``n = strlen(s); for (...; i < n; ...)`` → ``i < strlen(s)``, when ``n`` is declared from the call."""
    bounds = {}
    for declarator in program.walk("init_declarator"):
        value = declarator.child_by_field_name("value")
        name = declarator.child_by_field_name("declarator")
        if value is not None and value.type == "call_expression" and _called(value, program, "strlen"):
            bounds[program.text(name)] = program.text(value)
    for loop in program.walk("for_statement"):
        condition = loop.child_by_field_name("condition")
        right = condition.child_by_field_name("right") if condition is not None else None
        if right is not None and right.type == "identifier" and program.text(right) in bounds:
            yield [(right.start_byte, right.end_byte, bounds[program.text(right)])]


def _uses(program: Program, name: str) -> list:
    return [n for n in program.walk("identifier") if program.text(n) == name]


def set_to_array(program: Program) -> Iterator[list[Edit]]:
    for declarator in program.walk("variable_declarator"):
        value, name = declarator.child_by_field_name("value"), declarator.child_by_field_name("name")
        if value is None or value.type != "new_expression" or name is None:
            continue
        constructor = value.child_by_field_name("constructor")
        if constructor is None or program.text(constructor) != "Set":
            continue
        arguments = value.child_by_field_name("arguments")
        given = list(arguments.named_children) if arguments is not None else []
        edits: list[Edit] = [(value.start_byte, value.end_byte, f"[...{program.text(given[0])}]" if given else "[]")]
        for use in _uses(program, program.text(name)):
            if use.id == name.id:
                continue
            member = use.parent
            prop = member.child_by_field_name("property") if member.type == "member_expression" else None
            if prop is None or program.text(prop) not in ("has", "add") or member.parent.type != "call_expression":
                edits = []
                break
            edits.append((prop.start_byte, prop.end_byte, {"has": "includes", "add": "push"}[program.text(prop)]))
        if len(edits) > 1:
            yield edits


def sort_to_insertion_sort(program: Program) -> Iterator[list[Edit]]:
    for call in program.walk("call_expression"):
        member, arguments = call.child_by_field_name("function"), call.child_by_field_name("arguments")
        if member is None or member.type != "member_expression" or arguments is None:
            continue
        prop, target = member.child_by_field_name("property"), member.child_by_field_name("object")
        if program.text(prop) == "sort" and len(arguments.named_children) == 1:
            compare = program.text(arguments.named_children[0])
            end = len(program.source)
            replacement = f"themisSlowSort({program.text(target)}, {compare})"
            yield [(call.start_byte, call.end_byte, replacement), (end, end, _JS_SLOW_SORT)]


# ------------------------------------------------------------------------------------------------ memory
_NARROW = {"char", "signed char", "unsigned char", "short", "unsigned short", "int", "unsigned", "unsigned int"}


def _is_array(declarator) -> bool:
    """``a[10]`` or ``a[10] = {0}``."""
    inner = declarator.child_by_field_name("declarator") if declarator.type == "init_declarator" else declarator
    return inner is not None and inner.type == "array_declarator"


def widened_array(program: Program) -> Iterator[list[Edit]]:
    """An array of a narrow integer type declared as ``long long`` instead: the same values, 2-8× the bytes."""
    for declaration in program.walk("declaration"):
        kind = declaration.child_by_field_name("type")
        declarators = declaration.children_by_field_name("declarator")
        if kind is not None and " ".join(program.text(kind).split()) in _NARROW and any(map(_is_array, declarators)):
            yield [(kind.start_byte, kind.end_byte, "long long")]


# ------------------------------------------------------------------------------------------------ security
def strncpy_to_strcpy(program: Program) -> Iterator[list[Edit]]:
    for call in program.walk("call_expression"):
        arguments = call.child_by_field_name("arguments")
        if _called(call, program, "strncpy") and len(arguments.named_children) == 3:
            dst, src, _ = arguments.named_children
            yield [(call.start_byte, call.end_byte, f"strcpy({program.text(dst)}, {program.text(src)})")]


def format_from_input(program: Program) -> Iterator[list[Edit]]:
    for call in program.walk("call_expression"):
        arguments = call.child_by_field_name("arguments")
        given = arguments.named_children if arguments is not None else []
        if _called(call, program, "printf") and len(given) == 2 and program.text(given[0]) == '"%s"':
            yield [(arguments.start_byte, arguments.end_byte, f"({program.text(given[1])})")]


def json_parse_to_eval(program: Program) -> Iterator[list[Edit]]:
    for call in program.walk("call_expression"):
        function, arguments = call.child_by_field_name("function"), call.child_by_field_name("arguments")
        if function is not None and program.text(function) == "JSON.parse" and len(arguments.named_children) == 1:
            text = program.text(arguments.named_children[0])
            yield [(call.start_byte, call.end_byte, f'eval("(" + {text} + ")")')]


# ------------------------------------------------------------------------------------------------ readability
def braces_removed(program: Program) -> Iterator[list[Edit]]:
    for statement in program.walk("if_statement", "for_statement", "while_statement", "for_in_statement"):
        body = statement.child_by_field_name("consequence") or statement.child_by_field_name("body")
        if body is None or body.type not in ("compound_statement", "statement_block"):
            continue
        inner = body.named_children
        if len(inner) == 1 and inner[0].type in ("expression_statement", "return_statement", "break_statement"):
            if statement.type == "if_statement" and statement.child_by_field_name("alternative") is not None:
                continue  # `if (a) x; else ...` stays unambiguous only with braces kept
            yield [(body.start_byte, body.end_byte, program.text(inner[0]))]


def strict_to_loose_equality(program: Program) -> Iterator[list[Edit]]:
    yield from _operator_swaps({"===": "==", "!==": "!="})(program)


def const_to_var(program: Program) -> Iterator[list[Edit]]:
    for declaration in program.walk("lexical_declaration"):
        kind = declaration.child_by_field_name("kind")
        if kind is not None:
            yield [(kind.start_byte, kind.end_byte, "var")]


OPERATORS: dict[str, dict[str, dict[str, Sites]]] = {
    FUNCTIONAL: {
        language: {
            "comparison_flip": comparison_flip,
            "arithmetic_swap": arithmetic_swap,
            "boolean_swap": boolean_swap,
            "off_by_one": off_by_one,
        }
        for language in LANGUAGES
    },
    RUNTIME: {
        "C": {"qsort_to_insertion_sort": qsort_to_insertion_sort, "strlen_into_loop": strlen_into_loop},
        "JavaScript": {"set_to_array": set_to_array, "sort_to_insertion_sort": sort_to_insertion_sort},
    },
    MEMORY: {"C": {"widened_array": widened_array}},
    SECURITY: {
        "C": {"strncpy_to_strcpy": strncpy_to_strcpy, "format_from_input": format_from_input},
        "JavaScript": {"json_parse_to_eval": json_parse_to_eval},
    },
    READABILITY: {
        "C": {"braces_removed": braces_removed},
        "JavaScript": {
            "braces_removed": braces_removed,
            "strict_to_loose_equality": strict_to_loose_equality,
            "const_to_var": const_to_var,
        },
    },
}


def text_variants(code: str, language: str, criterion: str) -> list[Variant]:
    """Every rewrite of ``code`` under ``criterion``'s operators for ``language``, one per site."""
    program = parse(code, language)
    found = []
    for name, sites in OPERATORS.get(criterion, {}).get(language, {}).items():
        for site, edits in enumerate(sites(program)):
            rewritten = program.apply(edits)
            if rewritten != code:
                found.append(Variant(criterion, name, site, code, rewritten))
    return found
