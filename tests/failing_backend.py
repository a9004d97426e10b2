"""A third-party backend that fails in a way no backend should, to prove the API still answers cleanly."""

from mail_gateway.backends.base import EmailBackend


class ExplodingBackend(EmailBackend):
    name = "exploding"

    def deliver(self, message):
        raise RuntimeError("boom: an unexpected bug")
