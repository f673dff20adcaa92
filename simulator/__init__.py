"""A Kraken-shaped spot exchange for tg to trade against: wire-faithful, seeded,
deterministic, and served as an ASGI app (in-process or by uvicorn).

    pairs        the listing: assets, pairs, precision, minimums, fee tiers
    price_path   the seeded market every pair trades on
    price_shapes moves laid over it: jump, trend, flat, flash crash
    matching     quotes, slippage, triggers, limits, fee tiers (pure)
    market_data  the seeded order book (Depth)
    tape         the public trades (Trades) and the candle forming, told as one story
    fill_models  the pluggable, seeded fill, latency and fee models
    models       the exchange's state as plain data
    ledger       every balance movement as a ledger entry (Ledgers)
    exchange     the exchange's behaviour over that state
    system_status the trading modes: what each refuses, and its control route
    exceptions   Kraken's error strings as exceptions
    params       requests and their validated parameters
    order_prices Kraken's relative price notation and trailing offsets
    auth         API-Key / API-Sign / nonce checks
    wire         Kraken's JSON shapes
    responses    the endpoints
    account_responses  the account's ledger, fee tiers, positions and amend trails
    urls         which path is which endpoint
    ratelimits   Kraken's REST, trading and open-order limits, per tier
    faults       the seeded fault schedule, its catalog and its log
    control      the control plane (/_sandbox/ and its Python API)
    scenario     price moves and faults scheduled from a TOML file
    client       the control plane's Python client, for other people's tests
    testing      a served sandbox in a `with`; pytest_plugin, the same as fixtures
    ui           the web view (/_sandbox/ui), one static page
    app          the ASGI application: the request pipeline
    store        the state saved in SQLite
    embedded     the in-process harness tg's CLI uses

It shares nothing with tg's core but the clock.
"""
