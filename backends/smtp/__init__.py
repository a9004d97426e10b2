"""SMTP delivery: connect (``connect``), one mail transaction (``transaction``), pooled connections (``pool``),
the client TLS context (``tls``), the choice of upstream (``upstreams``) and safe retries (``retry``), put
together by ``SmtpBackend`` (``backend``)."""

from mail_gateway.backends.smtp.backend import SmtpBackend

__all__ = ["SmtpBackend"]
