"""Runner: result columns, resume after an interrupted run, config clashes, weights policy."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from robustbench_sympie import Enhancer, register_enhancer
from robustbench_sympie.errors import SuiteError
from robustbench_sympie.results import RESULT_COLUMNS, read_results
from robustbench_sympie.runner import SuiteConfig, run_suite


@register_enhancer("test_countdown", overwrite=True)
class Countdown(Enhancer):
    """Identity that counts its calls and raises KeyboardInterrupt when ``budget`` reaches zero."""

    name = "test_countdown"
    calls = 0
    budget: int | None = None

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        type(self).calls += 1
        if type(self).budget is not None:
            type(self).budget -= 1
            if type(self).budget < 0:
                raise KeyboardInterrupt
        return images


@register_enhancer("test_needs_weights", overwrite=True)
class NeedsWeights(Enhancer):
    name = "test_needs_weights"
    requires_weights = True

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images


def _config(root: Path, out: Path, **overrides) -> SuiteConfig:
    settings = dict(enhancers=["identity", "test_countdown"], models=["tiny_test_model"], data_root=root,
                    corruptions="clean,gaussian_noise,contrast", severities=[1, 2], batch_size=4, workers=0,
                    device="cpu", out=out, progress=False)
    return SuiteConfig(**{**settings, **overrides})


STABLE = ["enhancer", "model", "dataset", "corruption", "severity", "n", "n_correct_top1", "n_correct_top5",
          "top1", "top5", "n_skipped", "config_hash"]


def test_results_table_columns_and_values(few_images: Path, tmp_path: Path):
    frame = run_suite(_config(few_images, tmp_path / "out"))
    on_disk = read_results(tmp_path / "out" / "results.csv")
    assert list(on_disk.columns[: len(RESULT_COLUMNS)]) == list(RESULT_COLUMNS)
    assert len(on_disk) == len(frame) == 2 * 5  # 2 pairs x (clean + 2 corruptions x 2 severities)
    clean = on_disk[on_disk.corruption == "clean"]
    assert set(clean.severity) == {0} and set(on_disk.n) == {6} and set(on_disk.n_skipped) == {0}
    assert (on_disk.top1 == on_disk.n_correct_top1 / on_disk.n).all()
    assert (on_disk.top5 >= on_disk.top1).all()
    for column in ("torch_version", "package_version", "device", "seed", "git_commit", "data_root"):
        assert column in on_disk.columns
    # the identity-like enhancers see the same pixels, so they score the same
    pivot = on_disk.pivot_table(index=["corruption", "severity"], columns="enhancer", values="n_correct_top1")
    assert (pivot["identity"] == pivot["test_countdown"]).all()


def test_interrupted_run_resumes_without_recomputing_finished_cells(few_images: Path, tmp_path: Path):
    reference = run_suite(_config(few_images, tmp_path / "reference"))
    Countdown.calls, Countdown.budget = 0, 5  # 2 batches per cell: dies in the 3rd cell
    with pytest.raises(KeyboardInterrupt):
        run_suite(_config(few_images, tmp_path / "out"))
    partial = read_results(tmp_path / "out" / "results.csv")
    assert len(partial) == 2 * 2  # two finished cells, both pairs
    Countdown.calls, Countdown.budget = 0, None
    resumed = run_suite(_config(few_images, tmp_path / "out"))
    assert Countdown.calls == 3 * 2  # only the three unfinished cells ran
    pd.testing.assert_frame_equal(
        resumed[STABLE].sort_values(STABLE[:5]).reset_index(drop=True),
        reference[STABLE].sort_values(STABLE[:5]).reset_index(drop=True),
    )
    Countdown.calls = 0
    run_suite(_config(few_images, tmp_path / "out"))
    assert Countdown.calls == 0  # everything finished: nothing recomputed


def test_other_settings_in_the_same_out_dir_are_refused(few_images: Path, tmp_path: Path):
    run_suite(_config(few_images, tmp_path / "out", corruptions="clean"))
    with pytest.raises(SuiteError, match="other settings"):
        run_suite(_config(few_images, tmp_path / "out", corruptions="clean", seed=7, crop=200))


def test_unreadable_files_are_counted_in_results(few_images: Path, tmp_path: Path):
    (few_images / "n01443537_broken.JPEG").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    frame = run_suite(_config(few_images, tmp_path / "out", corruptions="clean", enhancers=["identity"]))
    assert frame.n.tolist() == [6] and frame.n_skipped.tolist() == [1]
    assert "n01443537_broken.JPEG" in (tmp_path / "out" / "skipped.log").read_text()


def test_enhancer_without_weights_is_refused_unless_allowed(few_images: Path, tmp_path: Path):
    with pytest.raises(SuiteError, match="--allow-untrained"):
        run_suite(_config(few_images, tmp_path / "a", enhancers=["test_needs_weights"], corruptions="clean"))
    frame = run_suite(_config(few_images, tmp_path / "b", enhancers=["test_needs_weights"], corruptions="clean",
                              allow_untrained=True))
    assert frame.enhancer.tolist() == ["test_needs_weights[untrained]"]


def test_batches_never_straddle_two_cells():
    from robustbench_sympie.runner import CellBatchSampler

    sampler = CellBatchSampler([5, 3, 4], batch_size=2)
    assert list(sampler) == [[0, 1], [2, 3], [4], [5, 6], [7], [8, 9], [10, 11]]
    assert sampler.batches_per_cell() == [3, 2, 2] and len(sampler) == 7


def test_one_loader_with_workers_serves_every_cell(few_images: Path, tmp_path: Path):
    serial = run_suite(_config(few_images, tmp_path / "serial", enhancers=["identity"]))
    parallel = run_suite(_config(few_images, tmp_path / "parallel", enhancers=["identity"], workers=2))
    pd.testing.assert_frame_equal(serial[STABLE].reset_index(drop=True), parallel[STABLE].reset_index(drop=True))


def test_numeric_looking_config_hashes_survive_the_csv_round_trip(few_images: Path, tmp_path: Path, monkeypatch):
    import robustbench_sympie.runner as runner

    monkeypatch.setattr(runner, "config_hash", lambda settings: "012345678901")
    run_suite(_config(few_images, tmp_path / "out", enhancers=["identity"], corruptions="clean"))
    Countdown.calls = 0
    again = run_suite(_config(few_images, tmp_path / "out", enhancers=["identity"], corruptions="clean"))
    assert again.config_hash.tolist() == ["012345678901"]


def test_corrupting_on_the_device_counts_as_data_time():
    """Batches corrupted in the main process (torch backend): that time is data time, not the pair's compute
    time, and ``seconds`` (compute + data) covers both."""
    import time

    from robustbench_sympie.datasets import Batch
    from robustbench_sympie.models import create_model
    from robustbench_sympie.runner import ComputeSettings, Pair, evaluate_cell

    def slow_corruption(images: torch.Tensor, image_ids) -> torch.Tensor:
        time.sleep(0.05)
        return images

    model = create_model("tiny_test_model")
    enhancer = Countdown()
    pair = Pair("test_countdown", "tiny_test_model", enhancer, model, "none")
    batches = [Batch(torch.zeros(2, 3, 32, 32, dtype=torch.uint8), torch.zeros(2, dtype=torch.long), ["a", "b"], [])
               for _ in range(3)]
    counters, data_seconds, errors = evaluate_cell(batches, [pair], torch.device("cpu"),
                                                   compute=ComputeSettings(slow_corruption))
    assert data_seconds >= 3 * 0.05
    assert counters[id(pair)].seconds < 3 * 0.05 and counters[id(pair)].n == 6 and errors == []


def test_torch_backend_on_cpu_corrupts_in_the_workers_with_the_main_process_pixels(few_images: Path, tmp_path: Path,
                                                                                   monkeypatch):
    """On the CPU with workers that have cores of their own, the torch backend's corruption runs where the
    batches are collated (in the workers), not in the main process; the results are those of a run without
    workers, image by image. Without spare cores it stays in the main process."""
    import robustbench_sympie.runner as runner
    from robustbench_sympie.corruptions.backends import DeviceCorruption

    calls = {"main": 0}
    original = DeviceCorruption.__call__

    def counted(self, images, image_ids):
        calls["main"] += 1  # a worker process counts in its own copy of this dict
        return original(self, images, image_ids)

    monkeypatch.setattr(DeviceCorruption, "__call__", counted)
    settings = dict(enhancers=["identity"], corruption_backend="torch", corruptions="clean,gaussian_noise,glass_blur",
                    records=True)
    serial = run_suite(_config(few_images, tmp_path / "serial", **settings))
    assert calls["main"] == 2 * 2 * 2  # 2 corruptions x 2 severities x 2 batches of 4 + 2
    calls["main"] = 0
    monkeypatch.setattr(runner, "available_cores", lambda: torch.get_num_threads())  # no core to spare
    run_suite(_config(few_images, tmp_path / "busy", workers=2, **settings))
    assert calls["main"] == 8
    calls["main"] = 0
    monkeypatch.setattr(runner, "available_cores", lambda: torch.get_num_threads() + 2)
    parallel = run_suite(_config(few_images, tmp_path / "parallel", workers=2, **settings))
    assert calls["main"] == 0
    pd.testing.assert_frame_equal(serial[STABLE].reset_index(drop=True), parallel[STABLE].reset_index(drop=True))
    records = [pd.concat([pd.read_parquet(f) for f in sorted((tmp_path / run / "records").glob("*.parquet"))])
               .sort_values(["corruption", "severity", "image_id"]).reset_index(drop=True)
               for run in ("serial", "parallel")]
    pd.testing.assert_frame_equal(records[0].drop(columns="config_hash"), records[1].drop(columns="config_hash"))


def test_collate_applies_a_cell_corruption_once_per_batch():
    from robustbench_sympie.datasets import Sample, collate_samples

    seen = []

    def invert(images, image_ids):
        seen.append(list(image_ids))
        return 255 - images

    samples = [Sample(torch.full((3, 4, 4), i, dtype=torch.uint8), i, f"img{i}", "", corruption=invert)
               for i in range(3)]
    batch = collate_samples(samples + [Sample(torch.empty(0, dtype=torch.uint8), 9, "bad", "bad: unreadable",
                                              corruption=invert)])
    assert seen == [["img0", "img1", "img2"]] and batch.errors == ["bad: unreadable"]
    assert torch.equal(batch.images[:, 0, 0, 0], torch.tensor([255, 254, 253], dtype=torch.uint8))
    with pytest.raises(RuntimeError, match="different corruptions"):
        collate_samples([samples[0], samples[1]._replace(corruption=lambda images, ids: images)])
