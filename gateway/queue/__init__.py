"""Queued delivery (``GATEWAY_DELIVERY=queued``): messages are stored durably and answered at once
(``spool``), delivered later by workers that claim them with a lease and retry for days (``worker``,
``outcomes``), reported through the status API (``mail_gateway.http.queue_routes``), signed webhooks
(``webhooks``) and metrics (``metrics``). Everything it keeps lives in the store (``mail_gateway.store``)."""
