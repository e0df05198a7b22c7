"""Datatrove steps that start a pipeline (mined commits) and read or write records between phases.

Sharding is by unit, not by file: repository ``i`` (sorted by path) goes to task ``i % world_size`` and export row
``j`` to task ``j % world_size``, so the same tasks produce the same shards whatever the number of workers.
"""

from __future__ import annotations

import logging

from themis_rm.data.base import CountingStep, DocumentsPipeline
from themis_rm.data.git import GitError
from themis_rm.data.mine import CommitMiner, MineConfig, iter_export_rows
from themis_rm.data.records import read_row_adapter, record_to_document, write_row_adapter

logger = logging.getLogger(__name__)


class _MiningReader(CountingStep):
    """A reader that mines with one :class:`CommitMiner` per task: documents it is given pass first, unchanged.

    Subclasses say which units are this task's (``_mine``); the miner's drops land in this step's stats.
    """

    type = "📖 - READER"

    def __init__(self, config: MineConfig) -> None:
        super().__init__()
        self.config = config

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if data:
            yield from data
        yield from self._mine(CommitMiner(self.config, self.count), rank, world_size)

    def _mine(self, miner: CommitMiner, rank: int, world_size: int) -> DocumentsPipeline:
        raise NotImplementedError


class GitRepoReader(_MiningReader):
    """Mines the local repositories of ``config`` assigned to this task."""

    name = "mine_git"

    def _mine(self, miner: CommitMiner, rank: int, world_size: int) -> DocumentsPipeline:
        for spec in self.config.repo_specs()[rank::world_size]:
            self.stat_update("repositories")
            try:
                for record in miner.mine_repository(spec):
                    yield record_to_document(record)
            except GitError as exc:  # one broken clone must not stop the others; counted and logged
                self.stat_update("failed_repositories")
                logger.warning("skipping %s: %s", spec.path, exc)


class ExportReader(_MiningReader):
    """Ingests BigQuery-style export rows assigned to this task, reading contents from local clones."""

    name = "mine_export"

    def _mine(self, miner: CommitMiner, rank: int, world_size: int) -> DocumentsPipeline:
        for index, (row, where) in enumerate(iter_export_rows(self.config.bigquery)):
            if index % world_size != rank:
                continue
            record = miner.mine_export_row(row, where)
            if record is not None:
                yield record_to_document(record)


def record_writer(folder: str, filename: str = "${rank}.jsonl"):
    """A ``JsonlWriter`` writing flat records (uncompressed, one file per task)."""
    from datatrove.pipeline.writers import JsonlWriter

    return JsonlWriter(folder, output_filename=filename, compression=None, adapter=write_row_adapter)


def record_reader(folder: str, glob_pattern: str = "*.jsonl"):
    """A ``JsonlReader`` reading flat records back as documents."""
    from datatrove.pipeline.readers import JsonlReader

    return JsonlReader(folder, adapter=read_row_adapter, glob_pattern=glob_pattern, add_file_path=False)
