"""The outbox's checks of a kept message: HTML compatibility with mail clients (caniemail.com's data in
``data/``, with its licence), size against Gmail's clipping, missing alt text, text part or List-Unsubscribe, and
its links listed and, on request, fetched (``report``, ``compat``, ``features``, ``links``; the routes in
``routes``)."""
