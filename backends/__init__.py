"""Delivery backends behind one interface, documented in ``mail_gateway/backends/base.py``.

Import what you need from its module (``mail_gateway.backends.base.EmailBackend``,
``mail_gateway.backends.registry.create_backend``); this package imports nothing on its own, so loading one
backend never loads the others.
"""
