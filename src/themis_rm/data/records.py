"""The commit record every stage reads and writes, and its mapping to a datatrove ``Document``.

One mined record, as written to JSONL (contents shortened)::

    {"id": "3f1c0a9b2e7d4c11", "repo": "acme/kv", "commit": "9fceb02...", "date": "2019-02-11T09:30:00+00:00",
     "message": "Fix off-by-one in range check", "path": "src/kv.c", "language": "C",
     "old_contents": "...", "new_contents": "...", "diff": "diff --git a/src/kv.c b/src/kv.c\\n...",
     "license": null, "aspects": ["Functional_Correctness"]}

Inside a pipeline the record is a ``Document`` whose ``text`` is the new contents and whose ``metadata`` holds every
other field, so datatrove's own writers, stats and filters work on it unchanged. Later stages add keys
(``aspects``, ``review``, ``instruction``, ``judge``, ...) to the metadata; the flat row keeps them.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any

from themis_rm.errors import ThemisInputError

REQUIRED_FIELDS = ("repo", "commit", "path", "old_contents", "new_contents")


@dataclass
class CommitRecord:
    """A single-file, in-place modification: the file before (``old_contents``) and after (``new_contents``)."""

    repo: str
    commit: str
    date: str
    message: str
    path: str
    language: str
    old_contents: str
    new_contents: str
    diff: str
    license: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return record_id(self.repo, self.commit, self.path)


def record_id(repo: str, commit: str, path: str) -> str:
    """Stable id of a (repo, commit, path): the same record gets the same id on every machine and worker count."""
    return hashlib.sha1(f"{repo}\0{commit}\0{path}".encode()).hexdigest()[:16]


def stable_int(key: str) -> int:
    """A 64-bit integer derived from ``key`` (seeded choices that do not depend on row order or workers)."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")


def record_to_document(record: CommitRecord):
    """A datatrove ``Document`` for ``record`` (text = new contents)."""
    from themis_rm.data.base import Document

    metadata = asdict(record)
    metadata.pop("new_contents")
    metadata.update(metadata.pop("extra"))
    return Document(text=record.new_contents, id=record.id, metadata=metadata)


def document_to_row(document) -> dict[str, Any]:
    """The flat JSON row of a document: ``id``, every metadata key, then ``new_contents``."""
    return {"id": document.id, **document.metadata, "new_contents": document.text}


def row_to_document(row: dict[str, Any], where: str = "row"):
    """Inverse of :func:`document_to_row`; a row lacking a required field raises naming it."""
    from themis_rm.data.base import Document

    missing = [name for name in REQUIRED_FIELDS if not isinstance(row.get(name), str)]
    if missing:
        raise ThemisInputError(
            f"{where}: fields {missing} are missing or not strings (every record needs {REQUIRED_FIELDS})"
        )
    metadata = {k: v for k, v in row.items() if k not in ("id", "new_contents")}
    doc_id = row.get("id") or record_id(row["repo"], row["commit"], row["path"])
    return Document(text=row["new_contents"], id=str(doc_id), metadata=metadata)


def write_row_adapter(_writer, document) -> dict[str, Any]:
    """Adapter for datatrove's ``JsonlWriter``: flat rows instead of ``{text, id, metadata}``."""
    return document_to_row(document)


def read_row_adapter(_reader, data: dict, path: str, id_in_file: int | str) -> dict[str, Any]:
    """Adapter for datatrove's ``JsonlReader``: flat rows back into ``{text, id, metadata}``."""
    doc = row_to_document(data, f"{path}:{id_in_file}")
    return {"text": doc.text, "id": doc.id, "metadata": doc.metadata}


def pair_input(metadata: dict[str, Any], lines: tuple[int, int] | None = None) -> str:
    """The user turn of a pair: the synthesised instruction when an LLM stage wrote one, else the commit message
    followed by what to produce (a fallback that needs no model). ``lines`` (1-based, inclusive) asks for that
    excerpt of the file instead of the whole file (a pair cut to fit a token budget)."""
    instruction = metadata.get("instruction")
    path = metadata.get("path") or "the file"
    if isinstance(instruction, str) and instruction.strip():
        if lines is None:
            return instruction.strip()
        return f"{instruction.strip()}\n\nWrite lines {lines[0]}-{lines[1]} of `{path}` (the rest is unchanged)."
    language = metadata.get("language") or "source"
    what = f"lines {lines[0]}-{lines[1]} of the" if lines else "the complete"
    return f"{(metadata.get('message') or '').strip()}\n\nWrite {what} {language} file `{path}`."
