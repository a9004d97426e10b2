"""Benchmarks of the gateway against the Flask mail extensions and a hand-written smtplib floor (``make bench``)."""
