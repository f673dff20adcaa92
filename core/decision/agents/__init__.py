"""The decision side of the trade cycle: analysis, regime, and the models' vote."""

from core.decision.agents.regime_detection import REGIME_PRESETS, RegimeDetectionAgent, RegimePreset
from core.decision.agents.technical_analysis import TechnicalAnalysisAgent
from core.decision.agents.trading_decision import TradingDecisionAgent, aggregate_votes, create_trade_proposal

__all__ = [
    "REGIME_PRESETS",
    "RegimeDetectionAgent",
    "RegimePreset",
    "TechnicalAnalysisAgent",
    "TradingDecisionAgent",
    "aggregate_votes",
    "create_trade_proposal",
]
