"""KORE's webhook signing secrets (the Webhook API's `/v1/secrets`).

An account has at most one `active` secret, which signs every KORE-flavoured callback it is owed,
and at most one `pending` secret, made active when the caller rotates. A secret is stored sealed
(encrypted with the server's key, `simplane.core.secrets.SecretBox`): the signature is a hash
over the secret itself, so the server must be able to read it back; it is never stored or logged
in clear.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from simplane.core.db import Base, UTCDateTime
from simplane.core.models import PK


class WebhookSecret(Base):
    __tablename__ = "kore_webhook_secrets"
    __table_args__ = (UniqueConstraint("account_sid", "status",
                                       name="uq_kore_webhook_secrets_account_status"),)

    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(30), unique=True)  # whs_ + 26 characters
    account_sid: Mapped[str] = mapped_column(
        String(34), ForeignKey("accounts.sid", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(8))  # active | pending
    secret_sealed: Mapped[str] = mapped_column(Text)
    date_created: Mapped[datetime] = mapped_column(UTCDateTime)
    last_modified: Mapped[datetime] = mapped_column(UTCDateTime)
