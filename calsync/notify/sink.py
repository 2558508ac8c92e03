"""The development sink: ``calsync dev`` keeps outgoing email and webhooks in a folder.

In dev mode there is no mail server, and webhooks to ``localhost`` are refused by the
SSRF rule, so notices were sent nowhere. Here, each one is kept instead of sent, as one
JSON file in ``<state folder>/notices`` (written atomically) and one log line:

- email: what the SMTP sender would send (``from``, ``to``, ``subject``, the text part),
  with the whole message beside it as ``<file>.eml``;
- webhook: the request the webhook sender would make (``url``, every header including
  the signature, and the JSON body), so a receiver's verification can be tried on it.

``GET /dev/notices`` lists them (:mod:`calsync.web.routes.dev`). Production never builds
a sink: it exists only when ``Settings.notice_sink_dir`` is set, which ``calsync dev``
alone does.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import uuid
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from calsync.notify.outgoing_webhooks import WebhookSender
from calsync.notify.render import email_message
from calsync.notify.senders import Notice
from calsync.store.secrets import SecretBox

log = logging.getLogger(__name__)

__all__ = ["NoticeSink", "SinkEmail", "SinkWebhooks"]


class NoticeSink:
    """The folder notices are kept in; readable by :meth:`entries`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def keep(
        self,
        notice: Notice,
        *,
        now: datetime,
        message: Mapping[str, Any],
        attachment: bytes | None = None,
    ) -> Path:
        """Write one kept notice (and its ``.eml`` when ``attachment`` is given)."""
        name = f"{now.strftime('%Y%m%dT%H%M%S%fZ')}-{notice.channel}-{notice.id}"
        document = {
            "id": str(notice.id),
            "kept_at": now.isoformat(),
            "channel": notice.channel,
            "kind": notice.kind,
            "user_id": str(notice.recipient.user_id),
            "recipient": notice.recipient.email,
            "message": dict(message),
        }
        if attachment is not None:
            _write(self.folder / f"{name}.eml", attachment)
            document["eml"] = f"{name}.eml"
        path = self.folder / f"{name}.json"
        _write(path, json.dumps(document, indent=2).encode())
        log.info(
            "dev sink: kept the %s %s notice for %s in %s",
            notice.channel,
            notice.kind,
            notice.recipient.email,
            path,
        )
        return path

    def entries(self, *, user_id: uuid.UUID | None, limit: int) -> list[dict[str, Any]]:
        """Kept notices, newest first, at most ``limit``; only ``user_id``'s unless None."""
        found: list[dict[str, Any]] = []
        if not self.folder.is_dir():
            return found
        for path in sorted(self.folder.glob("*.json"), reverse=True):
            try:
                document = json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # not one of ours, or removed meanwhile
            if user_id is None or document.get("user_id") == str(user_id):
                found.append(document)
                if len(found) >= limit:
                    break
        return found


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class SinkEmail:
    """The ``email`` channel of dev mode: keeps the message it would send."""

    def __init__(self, sink: NoticeSink, sender: str) -> None:
        self.sink = sink
        self.sender = sender

    def send(self, session: Session, notice: Notice, *, now: datetime) -> None:
        message = email_message(notice, sender=self.sender, now=now)
        text = message.get_body(("plain",))
        summary = {
            "from": str(message["From"]),
            "to": str(message["To"]),
            "subject": str(message["Subject"]),
            "text": text.get_content() if text is not None else "",
        }
        self.sink.keep(notice, now=now, message=summary, attachment=message.as_bytes())


class _Capture:
    """Stands in for :class:`~calsync.notify.outbound.OutboundHttp`: keeps the POST."""

    def __init__(self) -> None:
        self.request: dict[str, Any] | None = None

    def post(self, url: str, *, body: bytes, headers: Mapping[str, str]) -> int:
        self.request = {
            "url": url,
            "headers": dict(headers),
            "body": json.loads(body),
            "body_text": body.decode(),  # the exact bytes the signature covers
        }
        return 200


class SinkWebhooks:
    """The ``webhook`` channel of dev mode: builds and signs the request exactly as
    :class:`~calsync.notify.outgoing_webhooks.WebhookSender` does, and keeps it instead of
    sending it (a user without a webhook URL still fails, as in production)."""

    def __init__(self, box: SecretBox, sink: NoticeSink) -> None:
        self.box = box
        self.sink = sink

    def send(self, session: Session, notice: Notice, *, now: datetime) -> None:
        capture = _Capture()
        WebhookSender(self.box, capture).send(session, notice, now=now)
        assert capture.request is not None  # a send that returned has posted
        self.sink.keep(notice, now=now, message=capture.request)
