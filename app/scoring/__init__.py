"""Scoring, in three rooms: `runtime/` (loaded versions, reload, shadow), `use_cases/` (what each scoring route
does, declared once each, and the pipeline they share), `customers/` (store, lifecycle rules, the profile)."""
