"""The mail itself, below every backend and feature: addresses, message requests, composing and rendering to bytes,
reading bytes back, and the per-recipient results. No Flask and no backend here."""
