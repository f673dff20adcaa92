"""Kraken's WebSocket API v2, served by the sandbox at /v2 next to its REST API.

- protocol.py: the messages, as pydantic models (requests in, envelopes out).
- tokens.py: GetWebSocketsToken's tokens and their expiry.
- channels.py: what each channel publishes, derived from the exchange's state.
- orders.py: the order methods, run through the REST pipeline (limits, faults).
- session.py: one connection.
- hub.py: the open connections, woken when the exchange changes (the app holds one
  whether or not it serves WebSockets, so it imports no more than that).
"""
