"""Security_Hardness: insecure rewrites of security-relevant code, and the small secure tasks they start from.

HumanEval has almost no security-relevant code, so the seeds are small tasks written for this purpose (each a
secure reference with functional tests). Each operator rewrites one API use into its insecure twin — the
mistakes bandit was built to catch: ``ast.literal_eval`` → ``eval``, ``yaml.safe_load`` → ``yaml.load`` with the
full loader, a subprocess argument list → a shell string, a parameterised SQL query → string formatting,
``hashlib.sha256`` → ``hashlib.md5``, ``secrets`` tokens → ``random``, a verifying TLS context → an unverified
one, a normalised path join → a plain join. The oracle (:mod:`.verify`) keeps a rewrite only when bandit flags
the variant and not the reference, and the tests pass on both.
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class SecureTask:
    task_id: str
    prompt: str
    entry_point: str
    solution: str
    tests: list[str]


TASKS = [
    SecureTask(
        "SECURE/parse_settings",
        "Parse a Python literal (a dict of settings) from untrusted text.",
        "parse_settings",
        "import ast\n\n\ndef parse_settings(text):\n    value = ast.literal_eval(text)\n"
        "    if not isinstance(value, dict):\n        raise ValueError('settings must be a dict')\n    return value\n",
        ["assert candidate(\"{'a': 1}\") == {'a': 1}", "assert candidate('{\"x\": [1, 2]}') == {'x': [1, 2]}"],
    ),
    SecureTask(
        "SECURE/load_config",
        "Load a YAML configuration document from untrusted text.",
        "load_config",
        "import yaml\n\n\ndef load_config(text):\n    return yaml.safe_load(text) or {}\n",
        ["assert candidate('a: 1') == {'a': 1}", "assert candidate('') == {}"],
    ),
    SecureTask(
        "SECURE/echo_name",
        "Run `echo` with a user-supplied name and return what it printed.",
        "echo_name",
        "import subprocess\n\n\ndef echo_name(name):\n"
        "    done = subprocess.run(['echo', name], capture_output=True, text=True, check=True)\n"
        "    return done.stdout.strip()\n",
        ["assert candidate('alice') == 'alice'", "assert candidate('bob') == 'bob'"],
    ),
    SecureTask(
        "SECURE/find_user",
        "Given (id, name) rows, load them into an in-memory SQLite table and return the rows with a given name.",
        "find_user",
        "import sqlite3\n\n\ndef find_user(rows, name):\n    conn = sqlite3.connect(':memory:')\n"
        "    conn.execute('CREATE TABLE users (id, name)')\n"
        "    conn.executemany('INSERT INTO users VALUES (?, ?)', rows)\n"
        "    return conn.execute('SELECT id, name FROM users WHERE name = ?', (name,)).fetchall()\n",
        ["assert candidate([(1, 'ann'), (2, 'bo')], 'ann') == [(1, 'ann')]", "assert candidate([], 'x') == []"],
    ),
    SecureTask(
        "SECURE/fingerprint",
        "Return a hex fingerprint of a password for storage comparison.",
        "fingerprint",
        "import hashlib\n\n\ndef fingerprint(password):\n    return hashlib.sha256(password.encode()).hexdigest()\n",
        [
            "assert candidate('a') == candidate('a')",
            "assert candidate('a') != candidate('b')",
            "assert all(c in '0123456789abcdef' for c in candidate('x'))",
        ],
    ),
    SecureTask(
        "SECURE/session_token",
        "Return a new random session token as hex (16 bytes of randomness).",
        "session_token",
        "import secrets\n\n\ndef session_token():\n    return secrets.token_hex(16)\n",
        ["assert len(candidate()) == 32", "assert candidate() != candidate()"],
    ),
    SecureTask(
        "SECURE/tls_context",
        "Build the TLS context a client uses to connect to a server.",
        "tls_context",
        "import ssl\n\n\ndef tls_context():\n    context = ssl.create_default_context()\n"
        "    return context.protocol.name\n",
        ["assert candidate() == 'PROTOCOL_TLS_CLIENT'"],
    ),
    SecureTask(
        "SECURE/user_file",
        "Return the path of a user's file inside a base directory, refusing names that escape it.",
        "user_file",
        "import os\n\n\ndef user_file(base, name):\n    path = os.path.normpath(os.path.join(base, name))\n"
        "    if not path.startswith(os.path.normpath(base) + os.sep):\n        raise ValueError('outside the base')\n"
        "    return path\n",
        ["assert candidate('/srv', 'a.txt') == '/srv/a.txt'"],
    ),
]


def _call_named(node: ast.AST, module: str, name: str) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == name
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == module
    )


def _rewrite(tree: ast.Module, match, apply) -> Iterator[ast.Module]:
    for index, node in enumerate(ast.walk(tree)):
        if match(node):
            fresh = copy.deepcopy(tree)
            target = list(ast.walk(fresh))[index]
            apply(fresh, target)
            yield ast.fix_missing_locations(fresh)


def _expr(source: str) -> ast.expr:
    return ast.parse(source, mode="eval").body


def literal_eval_to_eval(tree):
    def apply(fresh, node):
        node.func = ast.Name("eval", ast.Load())

    yield from _rewrite(tree, lambda n: _call_named(n, "ast", "literal_eval"), apply)


def safe_load_to_load(tree):
    def apply(fresh, node):
        node.func.attr = "load"
        node.keywords = [ast.keyword("Loader", _expr("yaml.Loader"))]

    yield from _rewrite(tree, lambda n: _call_named(n, "yaml", "safe_load"), apply)


def argument_list_to_shell(tree):
    def match(node):
        return _call_named(node, "subprocess", "run") and node.args and isinstance(node.args[0], ast.List)

    def apply(fresh, node):
        parts = [
            ast.FormattedValue(e, -1) if not isinstance(e, ast.Constant) else ast.Constant(str(e.value))
            for e in node.args[0].elts
        ]
        pieces = []
        for i, part in enumerate(parts):
            pieces += [ast.Constant(" ")] if i else []
            pieces.append(part)
        node.args[0] = ast.JoinedStr(pieces)
        node.keywords.append(ast.keyword("shell", ast.Constant(True)))

    yield from _rewrite(tree, match, apply)


def parameters_to_formatting(tree):
    def match(node):
        return (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "execute"
            and len(node.args) == 2
            and isinstance(node.args[0], ast.Constant)
            and "?" in str(node.args[0].value)
            and isinstance(node.args[1], ast.Tuple)
        )

    def apply(fresh, node):
        sql, values = node.args[0].value, list(node.args[1].elts)
        pieces: list[ast.AST] = []
        for i, text in enumerate(sql.split("?")):
            pieces.append(ast.Constant(text))
            if i < len(values):
                pieces += [ast.Constant("'"), ast.FormattedValue(values[i], -1), ast.Constant("'")]
        node.args = [ast.JoinedStr([p for p in pieces if not (isinstance(p, ast.Constant) and p.value == "")])]

    yield from _rewrite(tree, match, apply)


def sha256_to_md5(tree):
    def apply(fresh, node):
        node.func.attr = "md5"

    yield from _rewrite(tree, lambda n: _call_named(n, "hashlib", "sha256"), apply)


def secrets_to_random(tree):
    """``secrets.token_hex(n)`` → ``random.randbytes(n).hex()`` (the same length, predictable bytes)."""

    def apply(fresh, node):
        size = node.args[0] if node.args else ast.Constant(32)
        node.func = ast.Attribute(ast.Call(_expr("random.randbytes"), [size], []), "hex", ast.Load())
        node.args, node.keywords = [], []
        fresh.body.insert(0, ast.Import([ast.alias("random")]))

    yield from _rewrite(tree, lambda n: _call_named(n, "secrets", "token_hex"), apply)


def verified_to_unverified_tls(tree):
    def apply(fresh, node):
        node.func.attr = "_create_unverified_context"

    yield from _rewrite(tree, lambda n: _call_named(n, "ssl", "create_default_context"), apply)


def normalised_join_to_plain(tree):
    """``os.path.normpath(os.path.join(...))`` → ``os.path.join(...)`` (bandit has no rule for it: the oracle is
    expected to refuse these, and does; kept so the yield table shows the analyser's blind spot)."""

    def match(node):
        return (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "normpath"
            and node.args
            and isinstance(node.args[0], ast.Call)
            and getattr(node.args[0].func, "attr", "") == "join"
        )

    def apply(fresh, node):
        inner = node.args[0]
        node.func, node.args, node.keywords = inner.func, inner.args, inner.keywords

    yield from _rewrite(tree, match, apply)


OPERATORS = {
    "literal_eval_to_eval": literal_eval_to_eval,
    "safe_load_to_load": safe_load_to_load,
    "argument_list_to_shell": argument_list_to_shell,
    "parameters_to_formatting": parameters_to_formatting,
    "sha256_to_md5": sha256_to_md5,
    "secrets_to_random": secrets_to_random,
    "verified_to_unverified_tls": verified_to_unverified_tls,
    "normalised_join_to_plain": normalised_join_to_plain,
}
