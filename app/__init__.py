"""The lifecycle scoring service (FastAPI). `app.main:create_app` builds it; nothing happens at import."""
