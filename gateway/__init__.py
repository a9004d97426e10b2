"""mail-gateway: one HTTP route and one Flask extension in front of pluggable mail backends."""

from gateway.app import create_app
from gateway.extension import MailGateway

__all__ = ["MailGateway", "create_app"]
