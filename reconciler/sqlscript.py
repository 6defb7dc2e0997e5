"""Split a SQL script into statements, for migrations written as plain SQL.

asyncpg prepares every statement, and a prepared statement holds one command, so a script must be
run statement by statement.  Semicolons inside quotes, ``$$`` bodies and ``--`` comments do not
end a statement.
"""

from __future__ import annotations


def split_statements(script: str) -> list[str]:
    """The statements of ``script``, without their trailing semicolons and blank ones."""
    statements: list[str] = []
    current: list[str] = []
    i, n = 0, len(script)
    in_quote = in_dollar = False
    while i < n:
        ch = script[i]
        if in_dollar:
            if script.startswith("$$", i):
                in_dollar = False
                current.append("$$")
                i += 2
                continue
        elif in_quote:
            if ch == "'":
                in_quote = False
        elif script.startswith("--", i):
            end = script.find("\n", i)
            end = n if end == -1 else end
            current.append(script[i:end])
            i = end
            continue
        elif script.startswith("$$", i):
            in_dollar = True
            current.append("$$")
            i += 2
            continue
        elif ch == "'":
            in_quote = True
        elif ch == ";":
            statements.append("".join(current))
            current = []
            i += 1
            continue
        current.append(ch)
        i += 1
    statements.append("".join(current))
    return [s.strip() for s in statements if _has_code(s)]


def _has_code(statement: str) -> bool:
    return any(
        line.strip() and not line.strip().startswith("--") for line in statement.splitlines()
    )
