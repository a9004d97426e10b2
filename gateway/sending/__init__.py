"""The one send path: validate, compose and render once → the pipeline → one backend call → one log line.

Every way a message leaves the gateway comes through a ``Sender`` (``sender``): the HTTP routes (one message, a
batch, a raw message), ``mail-gateway send``, the SMTP ingress and the Flask extension's library use. Each way in
validates and renders what it was given (``mail_gateway.mail``), then ``deliver`` runs each rendered message
through the sender's message pipeline (``pipeline``: the sender policy, Bcc stripping, the 7-bit/8-bit decision,
then any registered step), hands what it lets through to the backend in one call (``EmailBackend.deliver_all``)
and writes one ``delivery`` log line per message (``log``).

Validation errors are ``InvalidMessageError`` (each field and its fix), delivery failures ``DeliveryError``
subclasses: the HTTP layer, the CLI and the ingress each turn them into their own answer, in one place.

A message a step refuses never reaches the backend (nor the queue), and the refusal is its outcome, logged like
any other: with ``GATEWAY_ALLOWED_SENDERS`` set, the pipeline's first step checks each message's senders
(envelope, From, Sender) against what its client may use, and refuses with a ``SenderNotAllowedError`` (HTTP 403,
SMTP ``550 5.7.1``).

With queued delivery (``GATEWAY_DELIVERY=queued``) the sender has a ``Spool``: ``deliver`` stores the messages
as the pipeline left them, durably, and reports each as a ``QueuedResult`` instead (within the caller's
``Transaction`` when it hands one down: a keyed HTTP request's, committed with its response); the delivery
workers later hand those very bytes to the same backend through ``deliver_now``, which writes the same
``delivery`` log lines.
"""

from mail_gateway.sending.interfaces import Spool, Transaction
from mail_gateway.sending.log import log_value, outcome_word
from mail_gateway.sending.sender import Accepted, Outcome, Sender, default_sender

__all__ = ["Accepted", "Outcome", "Sender", "Spool", "Transaction", "default_sender", "log_value", "outcome_word"]
