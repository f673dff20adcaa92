"""Client-side rate limiting: a fair token bucket, and Kraken's counters built from it."""

from core.exchange.ratelimit.kraken import KrakenRateLimiter, order_action_cost, rest_call_cost
from core.exchange.ratelimit.token_bucket import TokenBucketRateLimiter

__all__ = ["KrakenRateLimiter", "TokenBucketRateLimiter", "order_action_cost", "rest_call_cost"]
