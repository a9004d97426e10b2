"""The suppression list and the events vocabulary: addresses nothing is sent to (``list``), the event types,
reject reasons and the one way to record an event on a message and send it to the webhook (``events``)."""
