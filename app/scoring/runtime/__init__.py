"""The serving runtime: loaded model versions (scorers), their reload from the registry, and shadow scoring."""
