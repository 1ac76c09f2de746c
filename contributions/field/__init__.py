"""The offline field app (PWA) of the agents: /field/.

- views.py: the app shell, its manifest and service worker, the device enrolment, the data the
  phone keeps offline (reference data, the agent's area's regions, NIK prefixes, the agent's
  own participants);
- reference.py: what that data holds and its version;
- devices.py: a phone's own API token and receipt-number prefix (enrollment.FieldDevice).

The browser side is static/field/ (no build step): rules.js holds the registration checks and
the quote as the server computes them, tested against the same vectors as the server
(tests/field/vectors.json); the queue syncs through the public API (participants/bulk/ with
an Idempotency-Key, payments/ with the receipt number as the reference). docs/field-app.md.
"""
