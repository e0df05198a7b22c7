"""A multi-process launch that accelerate cannot turn into one group fails at once instead of racing.

``torchrun`` (or ``accelerate launch`` with a GPU config) on a machine without GPUs used to start N independent
single-process trainers writing one ``--output``; the real launcher is run here, on CPU.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest

from themis_rm.errors import ThemisInputError
from themis_rm.train.components import check_launch, launched_world_size

from .synthetic import operator_pairs, write_jsonl


@pytest.mark.parametrize(
    ("environ", "size"),
    [({}, 1), ({"WORLD_SIZE": "4"}, 4), ({"OMPI_COMM_WORLD_SIZE": "2"}, 2), ({"PMI_SIZE": "3", "WORLD_SIZE": ""}, 3)],
)
def test_launched_world_size_reads_every_launcher(environ, size):
    assert launched_world_size(environ) == size


def test_a_group_smaller_than_the_launch_is_refused_with_the_fix():
    with pytest.raises(ThemisInputError, match="started 2 processes but accelerate set up 1") as error:
        check_launch(1, "NO", {"WORLD_SIZE": "2", "RANK": "1"})
    assert "ACCELERATE_USE_CPU=true" in str(error.value)
    check_launch(2, "MULTI_CPU", {"WORLD_SIZE": "2"})
    check_launch(1, "NO", {})


def test_an_engine_the_config_asks_for_but_cannot_apply_is_named(caplog):
    with caplog.at_level(logging.WARNING, logger="themis_rm.train.components"):
        check_launch(2, "MULTI_CPU", {"WORLD_SIZE": "2", "RANK": "1", "ACCELERATE_USE_FSDP": "true"})
        assert not caplog.records  # said once, by rank 0
        check_launch(2, "MULTI_CPU", {"WORLD_SIZE": "2", "RANK": "0", "ACCELERATE_USE_FSDP": "true"})
        check_launch(2, "FSDP", {"WORLD_SIZE": "2", "RANK": "0", "ACCELERATE_USE_FSDP": "true"})
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == [
        "the accelerate config asks for FSDP but this run is MULTI_CPU"
    ]


@pytest.mark.slow
def test_torchrun_without_a_group_fails_before_writing(tiny_base_dir, tmp_path):
    data = write_jsonl(tmp_path / "train.jsonl", operator_pairs(8, seed=0))
    output = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k != "ACCELERATE_USE_CPU"}
    env.update(OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", CUDA_VISIBLE_DEVICES="", COLUMNS="400")
    command = [
        *(sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"),
        *("-m", "themis_rm.cli", "train", "--model", str(tiny_base_dir), "--data", str(data)),
        *("--output", str(output), "--batch-size", "4", "--micro-batch-size", "2", "--max-steps", "1"),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    said = done.stdout + done.stderr  # torchrun stops the other rank once one has failed
    assert "error: the launcher started 2 processes but accelerate set up 1" in said, said[-3000:]
    assert not output.exists()
