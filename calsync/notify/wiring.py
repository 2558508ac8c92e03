"""The real senders, wired from settings: `build_dispatcher`.

SMTP when ``CALSYNC_SMTP_URL`` is set, Web Push when ``CALSYNC_VAPID_PRIVATE_KEY`` is,
webhooks always. A channel without its setting fails permanently with a reason that
names it (`senders.Unconfigured`). In dev mode (``Settings.notice_sink_dir``), webhooks,
and email unless SMTP is set, are kept in that folder instead of sent
(:mod:`calsync.notify.sink`).

The senders import the port (`calsync.notify.senders`); only this module imports them
all, so none of them imports another inside a function (decisions N5).
"""

from __future__ import annotations

from calsync.config import Settings
from calsync.notify.addresses import AddressGuard
from calsync.notify.outbound import OutboundHttp
from calsync.notify.outgoing_webhooks import WebhookSender
from calsync.notify.senders import Dispatcher, Sender, Unconfigured
from calsync.notify.sink import NoticeSink, SinkEmail, SinkWebhooks
from calsync.notify.smtp import SmtpSender, parse_smtp_url
from calsync.notify.web_push import WebPushSender, load_vapid_key
from calsync.store.secrets import SecretBox

__all__ = ["build_dispatcher"]


def build_dispatcher(
    settings: Settings, box: SecretBox, *, http: OutboundHttp | None = None
) -> Dispatcher:
    """The real senders for ``settings``. Webhooks and Web Push share ``http``, which
    defaults to the SSRF rule with the system's resolver and certificate authorities;
    tests pass one whose guard names their receivers (``AddressGuard(test_listeners=...)``)."""
    http = http or OutboundHttp(AddressGuard())
    senders: dict[str, Sender] = {"webhook": WebhookSender(box, http), **_email(settings)}
    if settings.notice_sink_dir is not None:
        sink = NoticeSink(settings.notice_sink_dir)
        senders["webhook"] = SinkWebhooks(box, sink)
        if not settings.smtp_url:
            senders["email"] = SinkEmail(sink, settings.smtp_sender)
    return Dispatcher(senders | _push(settings, http))


def _email(settings: Settings) -> dict[str, Sender]:
    if not settings.smtp_url:
        return {"email": Unconfigured("email is not configured (CALSYNC_SMTP_URL)")}
    try:
        return {"email": SmtpSender(parse_smtp_url(settings.smtp_url), settings.smtp_sender)}
    except ValueError as err:
        return {"email": Unconfigured(f"CALSYNC_SMTP_URL is not usable: {err}")}


def _push(settings: Settings, http: OutboundHttp) -> dict[str, Sender]:
    if not settings.vapid_private_key:
        return {"push": Unconfigured("Web Push is not configured (CALSYNC_VAPID_PRIVATE_KEY)")}
    try:
        key = load_vapid_key(settings.vapid_private_key)
    except ValueError as err:
        return {"push": Unconfigured(f"CALSYNC_VAPID_PRIVATE_KEY is not usable: {err}")}
    return {"push": WebPushSender(key, settings.vapid_subject, http)}
