"""The HTTP API: one router per resource (`routes/`), assembled in `api.main`."""
