"""The MLflow adapter: registered model names, aliases to concrete versions, model bundles, promotion.

Imports nothing from `app/` or `training/`: both sides depend on it, never the other way round.
"""
