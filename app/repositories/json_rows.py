"""An aggregate both backends spell differently: rows' values as one JSON array of arrays, read as lists.

What lets a read carry a few rows of another table in one column of its own row (the profile's customer and its
score history: one statement, one round trip). PostgreSQL: json_agg(json_build_array(...)); SQLite:
json_group_array(json_array(...)), where a float goes in as text of 17 significant digits (printf's '!' flag: without
it SQLite stops at 16), because SQLite's JSON writes a REAL with 15 and a float would not come back the same;
float() reads either form back exactly (checked on 100,000 random doubles; only the largest double is off).
Neither promises the rows' order: readers sort what they read.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Float
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement


class json_rows(FunctionElement[Any]):  # noqa: N801 (an SQL function, named as SQLAlchemy names them)
    """json_rows(a, b, c): an aggregate, one [a, b, c] per row; NULL or [] over no rows."""

    type = JSON()
    inherit_cache = True


@compiles(json_rows)
def _any_dialect(element: json_rows, compiler: SQLCompiler, **kw: Any) -> str:
    # Only for showing a statement (str() without a dialect): the backends below are the ones that run it.
    return f"json_rows({compiler.process(element.clauses, **kw)})"


@compiles(json_rows, "postgresql")
def _postgresql(element: json_rows, compiler: SQLCompiler, **kw: Any) -> str:
    return f"json_agg(json_build_array({compiler.process(element.clauses, **kw)}))"


@compiles(json_rows, "sqlite")
def _sqlite(element: json_rows, compiler: SQLCompiler, **kw: Any) -> str:
    values = (
        f"printf('%!.17g', {compiler.process(clause, **kw)})"
        if isinstance(clause.type, Float)
        else compiler.process(clause, **kw)
        for clause in element.clauses
    )
    return f"json_group_array(json_array({', '.join(values)}))"
