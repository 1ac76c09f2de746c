"""The follow-up queue (issue 18): the participants in arrears an agent should contact next,
one-tap WhatsApp or call, and the outcome of each contact (append-only), which feeds analytics.

- models.py: FollowUpOutcome (append-only in the database: migration 0024_followup);
- services.py: record_outcome, the one write path;
- selectors.py: the queue, the WhatsApp link and the outcomes per month;
- views.py: /arrears/ (the queue) and the outcome form's POST.
"""
