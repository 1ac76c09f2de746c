"""The audit trail: database triggers (django-pghistory) record every insert, update and delete of
the tracked tables with who, when, from where and what changed; see docs/security.md."""
