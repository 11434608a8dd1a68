"""Distributed evaluation: torchrun data-parallel runs (Gloo, 2 processes), --shard K/N and merging shards."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from robustbench_sympie.aggregate import load_results
from robustbench_sympie.cli.publish_leaderboard import main as publish_cli
from robustbench_sympie.cli.run_suite import main as run_suite_cli
from robustbench_sympie.distributed import DistContext, DistributedRunError, parse_shard
from robustbench_sympie.errors import DataError
from robustbench_sympie.records import load_records
from robustbench_sympie.results import read_results
from robustbench_sympie.runner import SuiteConfig, run_suite

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = Path(__file__).with_name("dist_launch.py")
COUNTS = ["enhancer", "model", "dataset", "corruption", "severity", "n", "n_correct_top1", "n_correct_top5",
          "n_skipped", "config_hash"]
GRID = dict(corruptions="clean,gaussian_noise,contrast", severities=[1])


def _config(root: Path, out: Path, **overrides) -> SuiteConfig:
    settings = dict(enhancers=["identity"], models=["tiny_test_model"], data_root=root, batch_size=2, workers=0,
                    device="cpu", out=out, progress=False, **GRID)
    return SuiteConfig(**{**settings, **overrides})


def _counts(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[COUNTS].sort_values(COUNTS[:5]).reset_index(drop=True)


def _records(*folders: Path) -> pd.DataFrame:
    table = load_records(*folders)
    return table.sort_values(["enhancer", "corruption", "severity", "image_id"]).reset_index(drop=True)


def _torchrun(args: list[str], nproc: int = 2, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "OMP_NUM_THREADS": "1"}
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
               str(LAUNCH), "--model", "tiny_test_model", "--workers", "0", "--device", "cpu", "--batch-size", "2",
               "--no-progress", "--dist-timeout", "60", *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


# ------------------------------------------------------------------------------------------------ sharding
@pytest.mark.parametrize("n", [0, 1, 6, 11])
def test_shards_and_ranks_cover_every_image_exactly_once(n: int):
    for shards in (1, 2, 3):
        for world in (1, 2, 3):
            taken = [i for k in range(shards) for r in range(world)
                     for i in DistContext(rank=r, world_size=world, shard_spec=(k, shards)).positions(n)]
            assert sorted(taken) == list(range(n))


def test_parse_shard():
    assert parse_shard("2/4") == (2, 4)
    for bad in ("4/4", "1", "-1/2", "a/b", "0/0"):
        with pytest.raises(ValueError, match="--shard"):
            parse_shard(bad)


def test_world_size_in_environment_without_a_process_group_is_an_error(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("RANK", raising=False)
    with pytest.raises(DistributedRunError, match="torchrun"):
        DistContext.from_env(torch.device("cpu"))


def test_plain_run_records_world_size_one_and_leaves_torch_distributed_alone(few_images: Path, tmp_path: Path):
    frame = run_suite(_config(few_images, tmp_path / "plain", corruptions="clean"))
    assert set(frame["world_size"]) == {1} and "shard" not in frame.columns
    assert not torch.distributed.is_initialized()


def test_two_shards_merge_into_the_plain_run(few_images: Path, tmp_path: Path, capsys):
    plain = run_suite(_config(few_images, tmp_path / "plain"))
    s0 = run_suite(_config(few_images, tmp_path / "s0", shard=(0, 2)))
    s1 = run_suite(_config(few_images, tmp_path / "s1", shard=(1, 2)))
    assert set(s0["shard"]) == {"0/2"} and set(s1["shard"]) == {"1/2"}
    assert s0["shard_images"].nunique() == 1 and set(s0["shard_images"]).isdisjoint(s1["shard_images"])
    assert (s0["config_hash"] == plain["config_hash"]).all()  # the shard is not part of the configuration
    assert set(s0["n"]) == {3} and set(s1["n"]) == {3}
    merged = load_results([tmp_path / "s0" / "results.csv", tmp_path / "s1" / "results.csv"]).frame
    pd.testing.assert_frame_equal(_counts(merged), _counts(plain), check_dtype=False)
    assert set(merged["n_shards"]) == {2}
    pd.testing.assert_frame_equal(_records(tmp_path / "s0", tmp_path / "s1"), _records(tmp_path / "plain"))
    # with the plain run's copy of the same cells: identical numbers, kept once
    both = load_results([tmp_path / "plain" / "results.csv", tmp_path / "s0" / "results.csv",
                         tmp_path / "s1" / "results.csv"])
    assert len(both.frame) == len(plain)

    with pytest.raises(DataError, match=r"shard 1/2 is missing"):
        load_results([tmp_path / "s0" / "results.csv"])
    # publish_leaderboard merges the shards (results and per-image records), and names a missing one
    shards = [str(tmp_path / s / "results.csv") for s in ("s0", "s1")]
    assert publish_cli([*shards, "--out", str(tmp_path / "board")]) == 0
    assert publish_cli([shards[0], "--out", str(tmp_path / "board-missing")]) == 2
    assert "shard 1/2 is missing" in capsys.readouterr().err
    shutil.copytree(tmp_path / "s0", tmp_path / "s0-again")
    with pytest.raises(DataError, match=r"shard 0/2 appears 2 times .*s0-again"):
        load_results([tmp_path / "s0" / "results.csv", tmp_path / "s0-again" / "results.csv",
                      tmp_path / "s1" / "results.csv"])
    # a shard folder resumed by another shard (or by an unsharded run) is refused
    with pytest.raises(DataError, match="shard 0/2"):
        run_suite(_config(few_images, tmp_path / "s0", shard=(1, 2)))
    with pytest.raises(DataError, match="use another --out"):
        run_suite(_config(few_images, tmp_path / "s0"))


def test_cli_shard_default_out_gets_a_suffix(few_images: Path, tmp_path: Path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = ["--model", "tiny_test_model", "--enhancer", "identity", "--data-root", str(few_images),
            "--corruptions", "clean", "--workers", "0", "--device", "cpu", "--no-progress"]
    assert run_suite_cli([*args, "--shard", "1/3"]) == 0
    frame = read_results(tmp_path / "runs" / "imagenet-c-few-shard-1-of-3" / "results.csv")
    assert list(frame["shard"]) == ["1/3"] and list(frame["n"]) == [2]
    with pytest.raises(SystemExit):
        run_suite_cli([*args, "--shard", "3/3"])
    assert "0 <= K < N" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ torchrun
def test_torchrun_two_processes_match_a_plain_run_and_resume(few_images: Path, tmp_path: Path):
    """Gloo, 2 ranks: resumes a plain run's folder (another world size), same counts and records; rerun is a no-op."""
    plain = run_suite(_config(few_images, tmp_path / "plain"))
    out = tmp_path / "dist"
    run_suite(_config(few_images, out, corruptions="clean"))  # a finished cell, written by world size 1
    args = ["--enhancer", "identity", "--data-root", str(few_images), "--corruptions", GRID["corruptions"],
            "--severities", "1", "--out", str(out)]
    done = _torchrun(args)
    assert done.returncode == 0, done.stderr[-3000:]
    result = read_results(out / "results.csv")
    pd.testing.assert_frame_equal(_counts(result), _counts(plain.astype({"severity": int})), check_dtype=False)
    assert dict(zip(result["corruption"], result["world_size"], strict=True)) == {
        "clean": 1, "gaussian_noise": 2, "contrast": 2}
    pd.testing.assert_frame_equal(_records(out), _records(tmp_path / "plain"))
    assert "resuming: 1 of 3 cells" in done.stderr
    assert (out / "summary.md").is_file()

    before = (out / "results.csv").read_bytes()
    again = _torchrun(args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming: 3 of 3 cells" in again.stderr
    assert (out / "results.csv").read_bytes() == before


def test_torchrun_rank_without_images_still_counts(few_images: Path, tmp_path: Path):
    """One image, two ranks: rank 1 has nothing in any cell and the collectives still complete."""
    plain = run_suite(_config(few_images, tmp_path / "plain", limit=1))
    done = _torchrun(["--enhancer", "identity", "--data-root", str(few_images), "--corruptions", GRID["corruptions"],
                      "--severities", "1", "--limit", "1", "--out", str(tmp_path / "dist")])
    assert done.returncode == 0, done.stderr[-3000:]
    result = read_results(tmp_path / "dist" / "results.csv")
    assert set(result["n"]) == {1}
    pd.testing.assert_frame_equal(_counts(result), _counts(plain), check_dtype=False)


def test_torchrun_failing_rank_stops_the_run_without_writing_its_cell(few_images: Path, tmp_path: Path):
    start = time.monotonic()
    done = _torchrun(["--enhancer", "test_fails_on_rank1", "--data-root", str(few_images), "--limit", "4",
                      "--batch-size", "2", "--corruptions", GRID["corruptions"], "--severities", "1",
                      "--out", str(tmp_path / "dist")])
    assert done.returncode != 0
    assert time.monotonic() - start < 90
    assert "rank 1: RuntimeError: test enhancer failed on purpose" in done.stderr
    assert "no row of this cell is written" in done.stderr
    result = read_results(tmp_path / "dist" / "results.csv")
    assert list(result["corruption"]) == ["clean"]  # the first cell only; the failed cell has no row
    records = load_records(tmp_path / "dist")
    assert set(records["corruption"]) == {"clean"}


def test_killed_rank_stops_its_peer_with_a_clear_message(few_images: Path, tmp_path: Path):
    """Two ranks started without torchrun's agent (nobody to kill the survivor): rank 1 dies by SIGKILL in the
    second cell, rank 0's collective fails at once with a one-line error, and the cell in flight is not written."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    args = [sys.executable, str(LAUNCH), "--model", "tiny_test_model", "--enhancer", "test_fails_on_rank1",
            "--data-root", str(few_images), "--limit", "4", "--batch-size", "2", "--corruptions", "clean,contrast",
            "--severities", "1", "--workers", "0", "--device", "cpu", "--no-progress", "--dist-timeout", "60",
            "--out", str(tmp_path / "dist")]
    base = {**os.environ, "PYTHONPATH": str(ROOT), "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port), "TEST_KILL_RANK1": "1", "OMP_NUM_THREADS": "1"}
    start = time.monotonic()
    procs = [subprocess.Popen(args, cwd=ROOT, env={**base, "RANK": str(r), "LOCAL_RANK": str(r)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in (0, 1)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert time.monotonic() - start < 90
    assert procs[1].returncode == -9 and procs[0].returncode == 2
    assert "another rank died, was killed or did not answer" in outputs[0][1]
    assert list(read_results(tmp_path / "dist" / "results.csv")["corruption"]) == ["clean"]


def test_readme_distributed_commands_parse():
    """Every torchrun / run_suite / publish_leaderboard command of the README's section parses as written."""
    import re
    import shlex

    from torch.distributed.run import get_args_parser

    from robustbench_sympie.cli.publish_leaderboard import build_parser as publish_parser
    from robustbench_sympie.cli.run_suite import build_parser

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Many GPUs and machines"):text.index("## Models")]
    values = {"$SLURM_ARRAY_TASK_ID": "3", "$SLURM_ARRAY_TASK_COUNT": "8",
              "$SLURM_NNODES": "2", "$SLURM_JOB_ID": "42", "$head": "node1"}
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", section, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            for name, value in values.items():
                line = line.replace(name, value)
            words = shlex.split(line, comments=True)
            if words and words[0] == "srun":
                words = words[1:]
            if words and words[0] in ("torchrun", "run_suite", "publish_leaderboard"):
                commands.append(words)
    assert {c[0] for c in commands} == {"torchrun", "run_suite", "publish_leaderboard"} and len(commands) >= 5
    for words in commands:
        if words[0] == "torchrun":
            launcher = get_args_parser().parse_args(words[1:])
            assert launcher.module and launcher.training_script == "robustbench_sympie.cli.run_suite"
            words = ["run_suite", *launcher.training_script_args]
        parser = build_parser() if words[0] == "run_suite" else publish_parser()
        parser.parse_args(words[1:])
