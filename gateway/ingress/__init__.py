"""The SMTP ingress: programs that only speak SMTP send through the gateway (``server`` runs aiosmtpd,
``handler`` relays each message through the send path, ``replies`` answers, ``security`` keeps it from being an
open relay)."""
