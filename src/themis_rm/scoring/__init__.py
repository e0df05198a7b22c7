"""Scoring: load a reward model, batch rendered sequences through it, return rewards in input order.

    from themis_rm.scoring import ScoreConfig, run_score
    run_score(ScoreConfig(model="project-themis/Themis-RM-8B", input=Path("pairs.jsonl"), output=Path("s.jsonl")))

Names are imported on first use: the job configs load without torch.
"""

from themis_rm.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "ADAPTERS": "themis_rm.scoring.adapters",
        "HeadSpec": "themis_rm.scoring.adapters",
        "LogprobSpec": "themis_rm.scoring.adapters",
        "load_adapter": "themis_rm.scoring.adapters",
        "ASPECT": "themis_rm.scoring.config",
        "ModelConfig": "themis_rm.scoring.config",
        "EngineStats": "themis_rm.scoring.engine",
        "ScoringEngine": "themis_rm.scoring.engine",
        "plan_batches": "themis_rm.scoring.engine",
        "ScoreConfig": "themis_rm.scoring.job",
        "ScoreSummary": "themis_rm.scoring.job",
        "run_score": "themis_rm.scoring.job",
        "LoadedModel": "themis_rm.scoring.models",
        "load_reward_model": "themis_rm.scoring.models",
        "PairScores": "themis_rm.scoring.scorer",
        "ScoreOutput": "themis_rm.scoring.scorer",
        "Scorer": "themis_rm.scoring.scorer",
    },
)
