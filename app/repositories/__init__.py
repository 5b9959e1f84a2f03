"""All SQL lives here: one module per table, functions that take a Session and return plain values."""
