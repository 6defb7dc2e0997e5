"""The named statements of ``queries.sql``, loaded once, as SQLAlchemy text by name."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

import sqlalchemy as sa

_NAME_LINE = re.compile(r"^-- name: (?P<name>[a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Statement:
    """One block of ``queries.sql``: its name, what it says it does, and its SQL."""

    name: str
    doc: str
    sql: str


def parse(source: str) -> dict[str, Statement]:
    """The blocks of a ``-- name:`` file.  A block without its comment line, without SQL, or
    with a name used twice is an error: the file is ours, so a mistake in it fails loudly."""
    statements: dict[str, Statement] = {}
    marks = list(_NAME_LINE.finditer(source))
    for mark, following in zip(marks, [*marks[1:], None], strict=True):
        name = mark["name"]
        body = source[mark.end() : following.start() if following else len(source)]
        doc_lines, sql = _split_doc(body)
        if not doc_lines:
            raise ValueError(f"queries.sql: {name!r} lacks the comment saying what it does")
        if not sql:
            raise ValueError(f"queries.sql: {name!r} has no SQL")
        if name in statements:
            raise ValueError(f"queries.sql: {name!r} is defined twice")
        statements[name] = Statement(name=name, doc=" ".join(doc_lines), sql=sql)
    return statements


def _split_doc(body: str) -> tuple[list[str], str]:
    """The leading comment lines of a block, and its statement up to the terminating ``;``
    (comment lines after it, such as the next section's title, are not part of it)."""
    lines = body.strip("\n").splitlines()
    doc: list[str] = []
    while lines and lines[0].startswith("--"):
        doc.append(lines.pop(0).removeprefix("--").strip())
    while lines and (not lines[-1].strip() or lines[-1].lstrip().startswith("--")):
        lines.pop()
    sql = "\n".join(lines).strip()
    return doc, sql.removesuffix(";").rstrip()


@cache
def statements() -> dict[str, Statement]:
    """Every block of the packaged ``queries.sql``, read on first use."""
    source = resources.files("reconciler.db").joinpath("queries.sql").read_text(encoding="utf-8")
    return parse(source)


def sql(name: str) -> str:
    """The SQL text of the statement ``name`` (for the raw asyncpg LISTEN connection)."""
    try:
        return statements()[name].sql
    except KeyError:
        raise LookupError(f"queries.sql has no statement named {name!r}") from None


@cache
def query(name: str) -> sa.TextClause:
    """The statement ``name`` as SQLAlchemy text; LookupError if queries.sql lacks it."""
    return sa.text(sql(name))
