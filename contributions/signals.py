"""Signals contributions' core sends, so that the layers above it (messaging) act on its writes
without the core importing them.
"""

from __future__ import annotations

from django.dispatch import Signal

# Sent by services.record_payment inside its transaction, after the ledger entry and the coverage
# are written, unless the caller asked for no receipt (`notify=False`: bulk files). Keyword
# argument: `payment`. Receivers run in the same transaction: what they write (the receipt in the
# outbox) commits or rolls back with the payment.
payment_recorded = Signal()
