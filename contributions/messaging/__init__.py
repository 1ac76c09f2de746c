"""Messaging to participants: reminder rules, plans and dispatch (reminders), the SMS / WhatsApp /
email gateways and their callbacks (gateways, callback_signature), the development gateway
(fake_gateway), payment receipts and welcome messages (notifications) and the transactional outbox
that hands messages to Celery (outbox).

It reads contributions' core (models, coverage rule, rates, selectors) and is told of payments by
the `payment_recorded` signal (contributions/signals.py); the core never imports it (the
"messaging-one-way" import-linter contract in pyproject.toml).
"""
