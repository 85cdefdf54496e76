"""Patients' external ids (hospital numbers, accession ids) as keyed HMACs.

The id itself is never stored: the database holds ``HMAC-SHA256(site secret, id)``, so
a copy of the database alone cannot be matched against a hospital's list; whoever knows
an id (and can use this site) can still look the patient up."""

from __future__ import annotations

import hashlib
import hmac

#: domain separation: the site secret may key other HMACs later
_CONTEXT = b"pixelmill/patient-external-id\x00"


class ExternalIds:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the site secret must be at least 16 bytes")
        self._secret = secret

    def digest(self, external_id: str) -> str:
        """The stored form of ``external_id`` (surrounding spaces ignored): 64 hex chars."""
        message = _CONTEXT + external_id.strip().encode("utf-8")
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def matches(self, external_id: str, stored: str | None) -> bool:
        return stored is not None and hmac.compare_digest(self.digest(external_id), stored)
