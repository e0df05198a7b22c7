"""The ``rename_identifiers`` kind: locals renamed to ``v1``, ``v2``, ... without changing what the code does.

It is exact for Python that parses: scope analysis with :mod:`ast`, rewriting with :mod:`tokenize`. Parameters are
renamed, so keyword calls from outside the snippet would break, and on Python 3.12+ an ``f"{x=}"`` shows the new
name. For the other languages and unparsable Python it renames only names declared in the snippet (``int x =``,
``let x``, ``x :=``, ``x = ...``, parameters in JS/Ruby/C-family) and skips any name that also shows up after
``.``/``->``/``::``, before ``:``, in a string, in a preprocessor line or as a JS shorthand property, so members, keys
and interpolations keep their names. It is scope-blind: a global declared in the snippet is renamed too, and names
reached some other way (C macros defined elsewhere, Ruby methods called without a receiver, a Go local shadowing a
package, code outside the snippet reading a global) can still be caught.
"""

from __future__ import annotations

import ast
import builtins
import io
import keyword
import logging
import random
import re
import tokenize

from themis_rm.bench.perturb.lexer import compiles, parse_python, scan

logger = logging.getLogger(__name__)

_INTROSPECTION = frozenset({"locals", "globals", "vars", "eval", "exec", "__dict__", "f_locals"})
_NAME_PREFIXES = ("v", "x", "t", "tmp", "var")


def rename_identifiers(code: str, language: str, rng: random.Random, other: str) -> str:
    """Locals renamed to fresh ``<prefix><k>`` names; Python that compiled and no longer does is left unchanged."""
    compiled = language == "Python" and compiles(code)
    edits = _python_renames(code) if compiled else _regex_renames(code, language)
    if not edits:
        return code
    original = code
    names = list(dict.fromkeys(name for _, _, name in edits))
    rng.shuffle(names)
    used, prefix = set(re.findall(r"\w+", code)), rng.choice(_NAME_PREFIXES)
    fresh = (f"{prefix}{k}" for k in range(1, len(used) + len(names) + 2))
    mapping = {name: next(new for new in fresh if new not in used) for name in names}
    for start, end, name in sorted(edits, reverse=True):
        code = code[:start] + mapping[name] + code[end:]
    if compiled and not compiles(code):  # a token position we misread (a lone "\r", say): leave it as it was
        logger.debug("rename_identifiers: result does not compile, response left unchanged")
        return original
    return code


def _python_renames(code: str) -> list[tuple[int, int, str]]:
    """(start, end, name) of every renamable NAME token; the scope rules are in :func:`_python_locals`."""
    tree = parse_python(code)
    if tree is None:
        return []
    tokens = list(tokenize.generate_tokens(io.StringIO(code).readline))
    if any(tok.type == tokenize.NAME and tok.string in _INTROSPECTION for tok in tokens):
        return []
    names = _python_locals(tree)
    fstrings = " ".join(tok.string for tok in tokens if tok.type == tokenize.STRING and _is_fstring(tok.string))
    names -= set(re.findall(r"\w+", fstrings))
    if any(isinstance(node, (ast.Match, getattr(ast, "TypeAlias", ast.Match))) for node in ast.walk(tree)):
        names -= set(keyword.softkwlist)
    line_starts = [0]
    for line in code.split("\n"):
        line_starts.append(line_starts[-1] + len(line) + 1)
    edits, previous = [], None
    for tok in tokens:
        if tok.type == tokenize.NAME and tok.string in names and not (previous and previous.string == "."):
            start = line_starts[tok.start[0] - 1] + tok.start[1]
            edits.append((start, start + len(tok.string), tok.string))
        if tok.type not in (tokenize.NL, tokenize.COMMENT):
            previous = tok
    return edits


def _is_fstring(token: str) -> bool:
    """Before Python 3.12 an f-string is one STRING token whose names tokenize does not show."""
    return "f" in re.match(r"[A-Za-z]*", token).group().lower()


_FUNCTION_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


def _python_locals(tree: ast.Module) -> set[str]:
    """Names bound only inside functions and never read where they could mean something outside the snippet.

    Left out: names bound at module or class level (importable, attributes), def/class names, imports, ``global``
    names, keyword-argument names (``f(x=1)`` names the callee's parameter), names read in a function that does not
    bind them nor is nested in one that does (a global from elsewhere), builtins, keywords and dunders.
    """
    renamable: set[str] = set()
    blocked = set(_PYTHON_RESERVED)

    def visit(scope: ast.AST, enclosing: tuple[set[str], ...], is_function: bool) -> None:
        nodes, stack = [], list(ast.iter_child_nodes(scope))
        while stack:
            node = stack.pop()
            nodes.append(node)
            if not isinstance(node, (*_FUNCTION_SCOPES, ast.ClassDef)):
                stack.extend(ast.iter_child_nodes(node))
        own, loaded = _python_bindings(nodes, blocked)
        (renamable if is_function else blocked).update(own)
        visible = set().union(own if is_function else set(), *enclosing)
        blocked.update(loaded - visible)
        blocked.update(_header_loads(scope) - set().union(*enclosing))  # ``def f(x=x)``: that x is outside
        inner = (*enclosing, own) if is_function else enclosing
        for node in nodes:
            if isinstance(node, (*_FUNCTION_SCOPES, ast.ClassDef)):
                visit(node, inner, not isinstance(node, ast.ClassDef))

    visit(tree, (), False)
    return {name for name in renamable - blocked if not name.startswith("__")}


def _header_loads(scope: ast.AST) -> set[str]:
    """Names read by a def's decorators and defaults, which run in the enclosing scope, not the def's own."""
    if not isinstance(scope, _FUNCTION_SCOPES):
        return set()
    header = [*scope.args.defaults, *scope.args.kw_defaults, *getattr(scope, "decorator_list", ())]
    return {node.id for part in header if part for node in ast.walk(part) if isinstance(node, ast.Name)}


def _python_bindings(nodes: list[ast.AST], blocked: set[str]) -> tuple[set[str], set[str]]:
    """(names bound, names read) by one scope's own nodes; names that must never change go into ``blocked``."""
    own: set[str] = set()
    loaded: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else own).add(node.id)
        elif isinstance(node, ast.arg):
            own.add(node.arg)
        elif isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)) and node.name:
            own.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            own.add(node.rest)
        elif isinstance(node, ast.Global):
            blocked.update(node.names)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            blocked.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            blocked.add(node.name)
        elif isinstance(node, ast.keyword) and node.arg:
            blocked.add(node.arg)
        elif isinstance(node, ast.MatchClass):
            blocked.update(node.kwd_attrs)
    return own, loaded


_KEYWORD_TEXT = (  # reserved words and ubiquitous library names of the eight languages: never renamed
    "abstract and as assert async auto await bool boolean break byte case catch chan char checked class const "
    "constexpr continue decimal def default defer defined delete do double dynamic elif else elsif end ensure "
    "enum event explicit export extends extern false fallthrough final finally float for foreach friend func "
    "function go goto if implements implicit import in inline instanceof int interface internal is let lock "
    "long map module mutable namespace native new next nil not null object of operator or out override "
    "package params private protected public range readonly redo ref register rescue retry return sbyte "
    "sealed select self short signed sizeof static string struct super switch synchronized template then this "
    "throw throws transient true try type typedef typeof uint ulong undef undefined union unless unsafe "
    "unsigned until ushort using var virtual void volatile when where while with yield arguments console "
    "document window std main len cap make append print println printf puts require"
)
_KEYWORDS = frozenset(_KEYWORD_TEXT.split())
_PYTHON_RESERVED = frozenset(dir(builtins)) | frozenset(keyword.kwlist)
_C_TYPE = (
    r"(?:bool|boolean|byte|char|double|float|int|long|short|size_t|ssize_t|string|String|u?int\d*_t|unsigned|"
    r"signed|auto|var|object|decimal|uint|ulong|ushort|sbyte|dynamic|[A-Z]\w*|std::\w+|struct[ \t]+\w+)"
)
_C_DECLARATION = (
    rf"(?:^|[;{{(,])[ \t]*(?:(?:const|static|final|volatile|register|readonly)[ \t]+)*{_C_TYPE}"
    r"(?:<[^;(){}=\n]*>)?(?:\[\])*(?:[ \t]*[*&]+[ \t]*|[ \t]+)([a-z_]\w*)[ \t]*(?=[=;,\[)]|:(?!:)|in\b)"
)
_JS_FUNCTION_VALUE = (
    r"\b(?:const|let|var)[ \t]+([\w$]+)[ \t]*=[ \t]*(?:async\b[ \t]*)?(?:function\b|\([^()]*\)[ \t]*=>|[\w$]+[ \t]*=>)"
)
_DECLARATIONS = {
    "Go": (
        r"\bvar[ \t]+([a-z_]\w*)",
        r"(?:^|[;{]|\bfor\b|\bif\b|\bswitch\b)[ \t]*((?:[a-z_]\w*[ \t]*,[ \t]*)*[a-z_]\w*)[ \t]*:=",
    ),
    "JavaScript": (
        r"\b(?:let|const|var)[ \t]+([a-z_]\w*)",
        r"\bfunction\b[ \t]*\*?[ \t]*[\w$]*[ \t]*\(([^()]*)\)",
        r"\(([^()]*)\)[ \t]*=>",
        r"\b([a-z_]\w*)[ \t]*=>",
    ),
    "Ruby": (
        r"^[ \t]*([a-z_]\w*)[ \t]*=(?![=~>])",
        r"\|[ \t]*([a-z_]\w*(?:[ \t]*,[ \t]*[a-z_]\w*)*)[ \t]*\|",
        r"\bdef[ \t]+(?:self\.)?[\w?!=]+[ \t]*\(([^()]*)\)",
    ),
    "Python": (
        r"^[ \t]*([a-z_]\w*)[ \t]*=(?!=)",
        r"\bfor[ \t]+([a-z_]\w*)[ \t]+in\b",
        r"\bdef[ \t]+\w+[ \t]*\(([^()]*)\)",
    ),
}


def _regex_renames(code: str, language: str) -> list[tuple[int, int, str]]:
    """(start, end, name) of the bare uses of names declared in ``code``; see the module limits."""
    spans = scan(code, language)
    pieces, done = [], 0
    for start, end, _ in spans:
        if end > done:
            pieces += [code[done:start], re.sub(r"[^\n]", " ", code[max(start, done) : end])]
            done = end
    plain = "".join([*pieces, code[done:]])  # same offsets, literals and comments blanked
    declared: dict[str, None] = {}
    for pattern in _DECLARATIONS.get(language, (_C_DECLARATION,)):
        for match in re.finditer(pattern, plain, re.MULTILINE):
            # a name or a parameter list: the first identifier of each comma-separated item
            declared.update(dict.fromkeys(re.findall(r"(?:^|,)\s*[*&]{0,2}([a-z_]\w*)", match.group(1))))
    in_strings = set(re.findall(r"\w+", " ".join(code[start:end] for start, end, kind in spans if kind == "s")))
    reserved = _KEYWORDS | _PYTHON_RESERVED if language == "Python" else _KEYWORDS
    blocked = {name for name in declared if name in reserved or name in in_strings or name == "_"}
    if language in ("C", "Cpp", "CSharp"):
        blocked.update(re.findall(r"\w+", " ".join(re.findall(r"^[ \t]*#.*$", plain, re.MULTILINE))))
    if language == "JavaScript":  # ``const add = (a, b) => ...`` is a function a test harness may call by name
        blocked.update(re.findall(_JS_FUNCTION_VALUE, plain))
    wanted = [re.escape(name) for name in declared if name not in blocked]
    if not wanted:
        return []
    uses = []
    for match in re.finditer(rf"(?<![\w$@])(?:{'|'.join(wanted)})(?![\w$])", plain):
        name = match.group()
        if _qualified(plain, match.start(), match.end(), language):
            blocked.add(name)
        else:
            uses.append((match.start(), match.end(), name))
    return [use for use in uses if use[2] not in blocked]


def _qualified(plain: str, start: int, end: int, language: str) -> bool:
    """True where a name is a member, key, label, symbol, keyword argument or function name, not a local."""
    before, after = plain[max(start - 12, 0) : start], plain[end : end + 3]
    if before.endswith((".", "->", "::")) or (after.startswith(":") and not after.startswith(("::", ":="))):
        return True
    if re.search(r"\b(?:def|function|func|class|struct|enum|new|goto)[ \t]+$", before):
        return True
    if language == "Ruby" and before.endswith(":"):
        return True
    if language == "Python" and re.search(r"[(,][ \t]*$", before) and re.match(r"[ \t]*=(?!=)", after):
        return True
    return language == "JavaScript" and bool(re.search(r"[{,][ \t]*$", before) and re.match(r"[ \t]*[,}]", after))
