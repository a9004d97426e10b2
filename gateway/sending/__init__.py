"""The one send path: validate once → compose once → render once → one backend call → one log line.

Every way a message leaves the gateway comes through a ``Sender`` (``sender``): the HTTP routes (one message, a
batch, a raw message), ``mail-gateway send``, the SMTP ingress and the Flask extension's library use. Each way in
validates and renders what it was given (``mail_gateway.mail``), then ``deliver`` hands the rendered messages to
the backend in one call (``EmailBackend.deliver_all``) and writes one ``delivery`` log line per message
(``log``).

Validation errors are ``InvalidMessageError`` (each field and its fix), delivery failures ``DeliveryError``
subclasses: the HTTP layer, the CLI and the ingress each turn them into their own answer, in one place.

With ``GATEWAY_ALLOWED_SENDERS`` set, ``deliver`` first checks each message's senders (envelope, From, Sender)
against what its client may use; a refused message never reaches the backend (nor the queue), and its outcome is
a ``SenderNotAllowedError`` (HTTP 403, SMTP ``550 5.7.1``), logged like any other.

With queued delivery (``GATEWAY_DELIVERY=queued``) the sender has a ``Spool``: ``deliver`` stores the rendered
messages durably and reports each as a ``QueuedResult`` instead (within the caller's ``Transaction`` when it hands
one down: a keyed HTTP request's, committed with its response); the delivery workers later hand them to the same
backend through ``deliver_now``, which writes the same ``delivery`` log lines.
"""

from mail_gateway.sending.log import log_value, outcome_word
from mail_gateway.sending.sender import Accepted, Outcome, Sender, Spool, Transaction, default_sender

__all__ = ["Accepted", "Outcome", "Sender", "Spool", "Transaction", "default_sender", "log_value", "outcome_word"]
