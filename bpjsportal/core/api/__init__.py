"""The API framework every app uses: one error format (errors.py), the strict JSON parser
(parsers.py), the base view, cursor pagination and parameters (base.py), the sync cursor
(sync.py). Authentication by API client token is enrollment's (enrollment/api/auth.py)."""
