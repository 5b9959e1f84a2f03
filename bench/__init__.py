"""`make bench`: the service against `mlflow models serve` of the same registered version (not part of tests)."""
