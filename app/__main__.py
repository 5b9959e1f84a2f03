"""`python -m app`: serve (app/server.py)."""

from app.server import main

main()
