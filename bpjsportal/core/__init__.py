"""Shared infrastructure, the lowest layer: imports no domain app (enrollment, contributions,
reporting) and none of the project wiring (urls, admin, launcher). Enforced by import-linter
([tool.importlinter] in pyproject.toml)."""
