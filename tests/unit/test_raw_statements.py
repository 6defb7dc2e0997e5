"""The hot path's statements in asyncpg's style: ``:name`` parameters become ``$n``."""

from __future__ import annotations

import pytest
from sqlalchemy import exc

from reconciler.db.connection import RawResult, positional
from reconciler.db.queries import statements


def test_names_become_numbers_in_order_of_first_use() -> None:
    """Each name gets one number, reused where it appears again; casts stay as they are."""
    text, names = positional(
        "UPDATE t SET a = CAST(:x AS jsonb), b = :y::text WHERE id = :x AND c = 'a::b'"
    )
    assert names == ("x", "y")
    assert text == "UPDATE t SET a = CAST($1 AS jsonb), b = $2::text WHERE id = $1 AND c = 'a::b'"


def test_every_statement_of_queries_sql_converts_without_leftover_names() -> None:
    """No ``:name`` survives the conversion of any named statement."""
    for statement in statements().values():
        text, names = positional(statement.sql)
        assert len(set(names)) == len(names)
        for name in names:
            assert f":{name}" not in text.replace(f"::{name}", "")


def test_rows_read_by_attribute_and_mapping() -> None:
    """A raw row answers attribute reads and ``_mapping``; one_or_none refuses two rows."""
    result = RawResult([{"id": 1, "name": "a"}])
    row = result.one_or_none()
    assert row is not None and (row.id, row.name) == (1, "a")
    assert row._mapping == {"id": 1, "name": "a"}
    with pytest.raises(AttributeError):
        _ = row.missing
    assert RawResult([]).one_or_none() is None
    with pytest.raises(exc.MultipleResultsFound):
        RawResult([{"id": 1}, {"id": 2}]).one_or_none()
