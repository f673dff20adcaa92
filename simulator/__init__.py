"""A Kraken-shaped spot exchange for tg to trade against: wire-faithful, seeded,
deterministic, and served as an ASGI app (in-process or by uvicorn).

    pairs        the listing: assets, pairs, precision, minimums, fee tiers
    price_path   the seeded market every pair trades on
    matching     quotes, slippage, triggers, limits, fee tiers (pure)
    models       the exchange's state as plain data
    exchange     the exchange's behaviour over that state
    exceptions   Kraken's error strings as exceptions
    params       requests and their validated parameters
    auth         API-Key / API-Sign / nonce checks
    wire         Kraken's JSON shapes
    responses    the endpoints
    urls         which path is which endpoint
    app          the ASGI application
    store        the state saved in SQLite
    embedded     the in-process harness tg's CLI uses

It shares nothing with tg's core but the clock.
"""
