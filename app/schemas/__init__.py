"""API request and response models (the HTTP contract of API.md); database models live in app/models."""
