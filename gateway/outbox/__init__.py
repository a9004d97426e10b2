"""The outbox: the mail a keeping backend holds, read back over ``/v1/outbox`` (``api``) and on the ``/outbox``
page in a browser (``page``, with its ``templates/`` and ``static/``)."""
