"""One-click unsubscribe (RFC 8058): the signed token a link names its recipient by, and the headers it adds.

A token is ``<recipient, base64url>.<HMAC-SHA256, base64url>``: it names one recipient and nothing else, so it
needs no table, cannot be made for another address without the key, and an altered one fails its check. The key
is derived from GATEWAY_UNSUBSCRIBE_SECRET for this one use, so the secret signs nothing else by accident.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from mail_gateway.errors import FieldError, InvalidMessageError
from mail_gateway.mail.request import MessageRequest
from mail_gateway.settings.unsubscribe import UnsubscribeSettings

PATH = "/u/"
LIST_UNSUBSCRIBE = "List-Unsubscribe"
LIST_UNSUBSCRIBE_POST = "List-Unsubscribe-Post"
ONE_CLICK = "List-Unsubscribe=One-Click"
_PURPOSE = b"mail-gateway one-click unsubscribe v1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    """Makes and checks tokens; its repr never shows the key."""

    def __init__(self, secret: str) -> None:
        self._key = hmac.new(secret.encode("utf-8"), _PURPOSE, hashlib.sha256).digest()

    @classmethod
    def configured(cls, settings: UnsubscribeSettings) -> TokenSigner | None:
        secret = settings.gateway_unsubscribe_secret
        return None if secret is None else cls(secret.get_secret_value())

    def __repr__(self) -> str:
        return "TokenSigner(key=<hidden>)"

    def _mac(self, recipient: bytes) -> bytes:
        return hmac.new(self._key, recipient, hashlib.sha256).digest()

    def token(self, recipient: str) -> str:
        named = recipient.encode("utf-8")
        return f"{_b64(named)}.{_b64(self._mac(named))}"

    def recipient(self, token: str) -> str | None:
        """The recipient ``token`` names, or None when it is not one this key made (forged, altered, cut)."""
        named_text, dot, mac_text = token.partition(".")
        if not dot or not named_text or not mac_text:
            return None
        try:
            named = _unb64(named_text)
        except (binascii.Error, ValueError):
            return None
        # Both parts as this key writes them, character for character: base64 decodes padded, in the other
        # alphabet, or with the last character's spare bits changed to the same bytes, and such a token is altered.
        expected = _b64(self._mac(named)).encode("ascii")
        if not hmac.compare_digest(mac_text.encode("utf-8", "surrogatepass"), expected) or _b64(named) != named_text:
            return None
        try:
            return named.decode("utf-8")
        except UnicodeDecodeError:
            return None


MAILTO_LOCAL_PART = "unsubscribe"
MAILTO_SUBJECT = "unsubscribe "


def unsubscribe_headers(public_url: str, signer: TokenSigner, recipient: str,
                        mail_domain: str | None = None) -> dict[str, str]:
    """The two RFC 8058 headers for a message to ``recipient`` (an envelope address). With ``mail_domain``
    (GATEWAY_BOUNCE_DOMAIN, which the ingress receives mail for) the link also has RFC 2369's mailto form, for
    clients that unsubscribe by mail: its subject carries the token, as a local part could not (64 octets)."""
    token = signer.token(recipient)
    links = f"<{public_url}{PATH}{token}>"
    if mail_domain is not None:
        links += f", <mailto:{MAILTO_LOCAL_PART}@{mail_domain}?subject={MAILTO_SUBJECT.strip()}%20{token}>"
    return {LIST_UNSUBSCRIBE: links, LIST_UNSUBSCRIBE_POST: ONE_CLICK}


def with_unsubscribe(request: MessageRequest, settings: UnsubscribeSettings,
                     mail_domain: str | None = None) -> MessageRequest:
    """``request`` with its List-Unsubscribe headers when it asks for them; ``InvalidMessageError`` when it cannot
    have them: a token names one recipient, so such a message goes to one (send one per recipient, as a batch)."""
    if not request.unsubscribe:
        return request
    errors = []
    public_url, signer = settings.gateway_public_url, TokenSigner.configured(settings)
    if public_url is None or signer is None:
        missing = "GATEWAY_PUBLIC_URL" if public_url is None else "GATEWAY_UNSUBSCRIBE_SECRET"
        errors.append(FieldError("unsubscribe", f"needs {missing}, which is not configured; set "
                                                "GATEWAY_PUBLIC_URL and GATEWAY_UNSUBSCRIBE_SECRET, or leave "
                                                "unsubscribe out"))
    if len(request.recipients) != 1:
        errors.append(FieldError("unsubscribe", "a message with an unsubscribe link goes to exactly one recipient "
                                                "(the link names them); send one message per recipient, for "
                                                "example with POST /v1/messages/batch"))
    taken = sorted(h for h in request.headers if h.lower() in (LIST_UNSUBSCRIBE.lower(),
                                                                  LIST_UNSUBSCRIBE_POST.lower()))
    errors += [FieldError(f"headers.{h}", "set by the gateway with unsubscribe; leave it out") for h in taken]
    if errors:
        raise InvalidMessageError(errors=errors)
    assert public_url is not None and signer is not None
    recipient = request.recipients[0].envelope
    headers = {**request.headers, **unsubscribe_headers(public_url, signer, recipient, mail_domain)}
    return request.model_copy(update={"headers": headers})
