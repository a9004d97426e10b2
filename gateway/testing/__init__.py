"""Testing with the gateway: the ``mail_outbox`` pytest fixture (``pytest_plugin``) and what it hands a test
(``outbox``)."""
