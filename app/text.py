"""Text the databases can hold: PostgreSQL refuses NUL in text, and a lone surrogate cannot be encoded at all.

Every id or name that reaches a query or a stored row is checked here first, so it is a 422 naming its field
on both backends instead of a database error (on SQLite the same strings would be stored, and differ later).
"""

from __future__ import annotations

# The same rule as a pattern, for the OpenAPI document of a path or query parameter or a body's name field.
NO_NUL = "^[^\\x00]*$"


def text_problem(value: str) -> str | None:
    """Why `value` cannot be stored or looked up, or None."""
    if "\x00" in value:
        return "must not contain NUL characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate ("\ud800"): no database encoding holds it
        return "must be valid Unicode text"
    return None


def storable(value: str) -> str:
    """A pydantic AfterValidator: the value, or a ValueError saying why no database holds it."""
    problem = text_problem(value)
    if problem:
        raise ValueError(problem)
    return value
