"""Bulk scoring outside the service: the record model every version carries, files, Spark."""
