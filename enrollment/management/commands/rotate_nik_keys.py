"""Re-encrypt stored NIKs under the current key, and (--rehash) recompute their digests.

Encryption key rotation (docs/operations.md, "NIK keys"):
  1. `manage.py rotate_nik_keys --new-key` prints a fresh key; put it FIRST in
     NIK_ENCRYPTION_KEYS and keep the old ones after it ("k2:new,k1:old"); deploy.
  2. `manage.py rotate_nik_keys`: every row whose token names another key is decrypted and
     encrypted again under the current one, in batches (one short transaction each).
  3. When it reports 0 rows left, drop the old key from NIK_ENCRYPTION_KEYS.

HMAC key rotation: set the new NIK_HMAC_KEY and the old one as NIK_HMAC_OLD_KEY (look-ups try
both meanwhile), run `manage.py rotate_nik_keys --rehash`, then unset NIK_HMAC_OLD_KEY.

Idempotent and resumable: a row already under the current key (and digest) is left alone, so
a run that was stopped is simply run again; `--from-id` skips the rows a log shows were done.
Only the two NIK columns change: the participant's sync position and updated_at stay.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import IntegrityError, connection, transaction

from enrollment import pii, unique_keys

SELECT = """
SELECT id, nik_digest, nik_encrypted FROM enrollment_participant
WHERE id > %s {extra} ORDER BY id LIMIT %s
"""
UPDATE = """
UPDATE enrollment_participant AS p SET nik_digest = v.d, nik_encrypted = v.e
FROM unnest(%s::bigint[], %s::bytea[], %s::text[], %s::text[]) AS v(id, d, e, old)
WHERE p.id = v.id AND p.nik_encrypted = v.old
"""


class Command(BaseCommand):
    help = "Re-encrypt NIKs under the current key (and --rehash their digests), in batches."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch-size", type=int, default=5000, help="rows per batch (one transaction each)"
        )
        parser.add_argument("--from-id", type=int, default=0, help="start after this id")
        parser.add_argument(
            "--max-batches", type=int, default=0, help="stop after this many batches (0: all)"
        )
        parser.add_argument(
            "--rehash",
            action="store_true",
            help="also recompute every digest under NIK_HMAC_KEY (HMAC key rotation)",
        )
        parser.add_argument(
            "--new-key", action="store_true", help="print a fresh encryption key and exit"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["new_key"]:
            self.stdout.write(pii.generate_encryption_key())
            return
        batch_size = options["batch_size"]
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        keys = pii.keys()
        current = keys.current_id
        rehash = options["rehash"]
        # Without --rehash only the rows under another key are read (the index on id is walked
        # once either way).
        extra = "" if rehash else "AND NOT starts_with(nik_encrypted, %s)"
        sql = SELECT.format(extra=extra)
        last, batches, changed = options["from_id"], 0, 0
        conflicts: list[int] = []
        while True:
            params: list[Any] = [last] + ([] if rehash else [current + ":"]) + [batch_size]
            with connection.cursor() as cur:
                cur.execute(sql, params)
                rows = cur.fetchall()
            if not rows:
                break
            updates = []
            self.rekeys: dict[int, tuple[str, str]] = {}
            for pid, digest, token in rows:
                nik = pii.decrypt_nik(token)
                new_token = token if pii.token_key_id(token) == current else pii.encrypt_nik(nik)
                new_digest = pii.nik_digest(nik) if rehash else bytes(digest)
                if new_token != token or new_digest != bytes(digest):
                    updates.append((pid, new_digest, new_token, token))
                if new_digest != bytes(digest):
                    self.rekeys[pid] = (bytes(digest).hex(), new_digest.hex())
            changed += self._apply(updates, conflicts)
            last = rows[-1][0]
            batches += 1
            self.stdout.write(f"up to id {last}: {changed} row(s) rewritten")
            if options["max_batches"] and batches >= options["max_batches"]:
                self.stdout.write(f"stopped after {batches} batch(es); resume: --from-id {last}")
                break
        left = self._left(current)
        self.stdout.write(
            self.style.SUCCESS(
                f"{changed} row(s) rewritten; {left} row(s) under another key than {current!r}"
            )
        )
        if conflicts:
            raise CommandError(
                "These participants share a NIK with another row under the new digest (registered "
                f"twice while the HMAC key rotation ran); resolve them by hand: {conflicts}"
            )

    def _apply(self, updates: list[tuple[int, bytes, str, str]], conflicts: list[int]) -> int:
        if not updates:
            return 0
        columns = [list(c) for c in zip(*updates, strict=True)]
        try:
            with transaction.atomic(), connection.cursor() as cur:
                cur.execute(UPDATE, columns)
                self._claim_new_digests([row[0] for row in updates])
                return int(cur.rowcount)
        except IntegrityError:
            pass
        done = 0  # a digest collided: row by row, so the rest of the batch still goes through
        for row in updates:
            try:
                with transaction.atomic(), connection.cursor() as cur:
                    cur.execute(UPDATE, [[v] for v in row])
                    self._claim_new_digests([row[0]])
                    done += int(cur.rowcount)
            except IntegrityError:
                conflicts.append(row[0])
        return done

    def _claim_new_digests(self, pids: list[int]) -> None:
        """A rehashed NIK's claim moves to its new digest (enrollment/unique_keys.py), in the
        same transaction; a new digest held by another participant is a conflict."""
        moved = [(pid, *self.rekeys[pid]) for pid in pids if pid in self.rekeys]
        unique_keys.release((unique_keys.NIK, old) for _pid, old, _new in moved)
        taken = unique_keys.claim((unique_keys.NIK, new, pid) for pid, _old, new in moved)
        if taken:
            raise unique_keys.KeyTaken(taken, {})

    def _left(self, current: str) -> int:
        with connection.cursor() as cur:
            cur.execute(
                "SELECT count(*) FROM enrollment_participant "
                "WHERE NOT starts_with(nik_encrypted, %s)",
                [current + ":"],
            )
            (n,) = cur.fetchone()
        return int(n)
