"""Scoring: load a reward model, batch rendered sequences through it, return rewards in input order."""

from themis_rm.scoring.adapters import ADAPTERS, HeadSpec, LogprobSpec, load_adapter
from themis_rm.scoring.engine import EngineStats, ScoringEngine, plan_batches
from themis_rm.scoring.models import LoadedModel, load_reward_model
from themis_rm.scoring.scorer import ASPECT, PairScores, ScoreOutput, Scorer

__all__ = [
    "ADAPTERS",
    "ASPECT",
    "EngineStats",
    "HeadSpec",
    "LoadedModel",
    "LogprobSpec",
    "PairScores",
    "ScoreOutput",
    "Scorer",
    "ScoringEngine",
    "load_adapter",
    "load_reward_model",
    "plan_batches",
]
