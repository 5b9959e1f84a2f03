"""Training: reads the real data, trains XGBoost, evaluates on the fixed holdout and registers versions.

Imports nothing from `app/`; it shares the feature contract with serving through `model_registry`.
"""
