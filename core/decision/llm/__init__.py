"""Language models behind one interface: offline strategies today, providers later."""

from core.decision.llm.interface import LanguageModel, ModelContext, ModelReply, Task
from core.decision.llm.offline import default_trading_models
from core.decision.llm.parsing import (
    ConflictAction,
    ConflictAnswer,
    Parsed,
    RegimeAnswer,
    TAAnswer,
    VoteAnswer,
    ask,
    parse_answer,
)

__all__ = [
    "ConflictAction",
    "ConflictAnswer",
    "LanguageModel",
    "ModelContext",
    "ModelReply",
    "Parsed",
    "RegimeAnswer",
    "TAAnswer",
    "Task",
    "VoteAnswer",
    "ask",
    "default_trading_models",
    "parse_answer",
]
