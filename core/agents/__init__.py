"""The decision side of the trade cycle: analysis, regime, and the models' vote."""

from core.agents.regime_detection import REGIME_PRESETS, RegimeDetectionAgent, RegimePreset
from core.agents.technical_analysis import TechnicalAnalysisAgent
from core.agents.trading_decision import TradingDecisionAgent, aggregate_votes, create_trade_proposal

__all__ = [
    "REGIME_PRESETS",
    "RegimeDetectionAgent",
    "RegimePreset",
    "TechnicalAnalysisAgent",
    "TradingDecisionAgent",
    "aggregate_votes",
    "create_trade_proposal",
]
