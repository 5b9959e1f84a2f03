"""Bulk scoring's constants that `clm`'s command signatures read: a module of its own, importing nothing, so
`clm --help` does not import the scoring stack (pandas, XGBoost) to show a default."""

from __future__ import annotations

ERROR_COLUMN = "error"  # a refused row's reason; every figure of the row is null
TOP_N = 3  # products: offers kept in `recommendations`, as POST /v1/products/match's default
