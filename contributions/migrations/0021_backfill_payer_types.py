"""Payer types of what was posted before they existed (issue 20): a bundle partner's are
`partner`; a sponsor's payments and batches take their partner's payer type; a participant
whose latest live payment is a sponsor's gets that as the current payer. Payments posted by the
participant's own money keep `self` (the column default). Only rows with a sponsor are touched.
An admin who later sets a partner's payer type (a regency: `apbd`) corrects its old batches'
price with `manage.py correct_budget_payments`, not here."""

from django.db import migrations

BACKFILL = """
UPDATE enrollment_partner SET payer_type = 'partner' WHERE kind = 'bundle' AND payer_type = 'sponsor';
UPDATE contributions_payment p SET payer_type = pa.payer_type
  FROM enrollment_partner pa WHERE p.sponsor_id = pa.id AND p.payer_type <> pa.payer_type;
UPDATE contributions_sponsorbatch b SET payer_type = pa.payer_type
  FROM enrollment_partner pa WHERE b.sponsor_id = pa.id AND b.payer_type <> pa.payer_type;
UPDATE contributions_coverage c SET payer_type = x.payer_type
  FROM (
    SELECT DISTINCT ON (p.participant_id) p.participant_id, p.payer_type
    FROM contributions_payment p
    JOIN contributions_ledgerentry e ON e.payment_id = p.id AND e.kind = 'payment'
    WHERE p.participant_id IN (
            SELECT participant_id FROM contributions_payment WHERE sponsor_id IS NOT NULL)
      AND NOT EXISTS (SELECT 1 FROM contributions_ledgerentry r WHERE r.reverses_id = e.id)
    ORDER BY p.participant_id, p.paid_at DESC, p.id DESC
  ) x
 WHERE c.participant_id = x.participant_id AND c.payer_type <> x.payer_type;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("contributions", "0020_contribution_credits"),
        ("enrollment", "0013_occupation_periods"),
    ]

    operations = [migrations.RunSQL(BACKFILL, migrations.RunSQL.noop)]
