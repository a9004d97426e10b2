"""The Flask extension, for the gateway used as a library inside a Flask app.

``MailGateway`` (``core``) reads the app's configuration and registers the gateway's send path as the app's
mail. It speaks Flask-Mail's API (``flask_mail``: ``Message``, ``Attachment``, ``send``, ``connect``,
``record_messages``) and flask-mailman's (``app_mail``, ``connection``: ``send_mail``, ``get_connection``,
``outbox``), renders their message objects (``message_objects``), records what was sent (``sent_email``), and
raises errors their users can catch the old way (``smtplib_errors``).
"""

from mail_gateway.extension.core import STATE_KEY, GatewayState, MailGateway

__all__ = ["STATE_KEY", "GatewayState", "MailGateway"]
