"""Tests of SyMPIE training: data stream, step pieces, a short CPU run, resume, and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from robustbench_sympie.datasets import demo_data_root
from robustbench_sympie.enhancers.sympie import Sympie
from robustbench_sympie.imageio import Preprocess, scan_image_folder
from robustbench_sympie.training import TrainConfig, train
from robustbench_sympie.training.data import CorruptedTrainingSet, RandomCrop, StreamSampler, build_held_out
from robustbench_sympie.training.step import clamp_norms, ema_update

CROP, RESIZE = 80, 92  # small images keep the CPU runs short (the NEM needs >= 43 px)


@pytest.fixture(scope="module")
def records():
    return scan_image_folder(demo_data_root())


def _config(out: Path, **overrides) -> TrainConfig:
    settings = dict(out=out, iterations=4, batch_size=4, workers=0, device="cpu", corruptions="colour_warp",
                    resize=RESIZE, crop=CROP, eval_every=0, checkpoint_every=0, log_every=1, progress=False)
    settings.update(overrides)
    return TrainConfig(**settings)


# -- data ------------------------------------------------------------------------------------------
def test_training_samples_are_keyed_by_sample_number(records) -> None:
    dataset = CorruptedTrainingSet(records[:5], ["darken", "night", "sunset", "white_point"], seed=3,
                                   geometry=RandomCrop(RESIZE, CROP))
    first, again, other = dataset.draw(7, 2), dataset.draw(7, 2), dataset.draw(8, 2)
    assert first[0].shape == (CROP, CROP, 3) and first[0].dtype.name == "uint8"
    assert (first[0] == again[0]).all() and first[2:] == again[2:]
    assert not ((first[0] == other[0]).all() and first[2:] == other[2:])
    severities = {dataset.draw(n, 0)[3] for n in range(60)}
    assert severities == {0, 1, 2, 3, 4, 5}


def test_stream_resumes_where_it_stopped() -> None:
    whole = list(StreamSampler(7, seed=1, start=0, stop=30))
    assert list(StreamSampler(7, seed=1, start=12, stop=30)) == whole[12:]
    assert sorted(i for _, i in whole[:7]) == list(range(7))  # each epoch is a permutation
    assert [n for n, _ in whole] == list(range(30))


def test_held_out_corruption_is_fixed_per_image(records) -> None:
    kwargs = dict(seed=0, preprocess=Preprocess(RESIZE, CROP), severities=(4, 5))
    one = build_held_out(records[:6], ["darken", "night"], **kwargs)
    two = build_held_out(records[:6], ["darken", "night"], **kwargs)
    assert torch.equal(one.corrupted, two.corrupted) and one.corruptions == two.corruptions
    assert one.clean.shape == (6, 3, CROP, CROP) and set(one.severities) <= {4, 5}


# -- step pieces -----------------------------------------------------------------------------------
def test_clamp_norms_rescales_each_gradient_to_norm_at_most_one() -> None:
    grads = [torch.full((4,), 3.0), torch.tensor([0.3, 0.4])]
    clamped = clamp_norms(grads, 1.0)
    assert torch.allclose(clamped[0].norm(), torch.tensor(1.0))
    assert torch.equal(clamped[1], grads[1])


def test_ema_update_covers_parameters_and_buffers() -> None:
    ema, student = torch.nn.BatchNorm2d(2), torch.nn.BatchNorm2d(2)
    with torch.no_grad():
        student.weight.fill_(2.0)
        student.running_mean.fill_(1.0)
        student.num_batches_tracked.fill_(5)
    ema_update(ema, student, 0.9)
    assert torch.allclose(ema.weight, torch.full((2,), 1.1))
    assert torch.allclose(ema.running_mean, torch.full((2,), 0.1))
    assert int(ema.num_batches_tracked) == 5


# -- training --------------------------------------------------------------------------------------
def test_short_training_run_raises_held_out_top1(records, tmp_path: Path) -> None:
    """A few dozen steps of Algorithm 1 on low-contrast images raise efficientnet_lite0's top-1 on held-out
    low-contrast images (never trained on), with the CPU recipe: BN statistics calibrated then frozen, the
    NEM's convolutions frozen, the colour part of the warp trained. Step 0 is exactly the identity."""
    torch.manual_seed(0)
    held_out = records[::2][:48]
    train_records = records[1::2]
    config = _config(tmp_path, iterations=30, batch_size=16, corruptions="contrast", severities=(2,),
                     val_corruptions="contrast", val_severities=(2,), eval_every=30, log_every=5,
                     freeze_backbone=True, bn_mode="calibrated", bn_calibration_batches=3, clamp_in_training=True,
                     warp_parts="colour", bias_lr=3e-2, head_lr=1e-5, warmup=2, resize=146, crop=128)
    result = train(config, train_records=train_records, held_out_records=held_out)

    start, end = result.evaluations[0], result.evaluations[-1]
    assert start["step"] == 0 and start["enhanced"] == start["enhanced_ema"] == start["corrupted"]
    assert start["enhanced_clean"] == start["clean"] and start["corrupted"] < start["clean"]
    assert result.finished and end["step"] == 30
    print(f"held-out top-1: corrupted {start['corrupted']}, student {end['enhanced']}, EMA {end['enhanced_ema']}")
    one_image = 100 / len(held_out)  # this run gains two images of 48 with the student and the EMA alike
    assert end["enhanced"] >= start["corrupted"] + one_image - 1e-3, (start, end)
    assert end["enhanced_ema"] >= start["corrupted"] + one_image - 1e-3, (start, end)

    trained = Sympie(weights=result.ema_weights)
    kernel = trained.nem.out.bias[12:]
    assert torch.equal(kernel, Sympie(weights=None).nem.out.bias[12:])  # warp_parts="colour" left it alone
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if r["kind"] == "train"] == [5, 10, 15, 20, 25, 30]
    assert all(r["loss"] == pytest.approx(r["loss1"] + r["loss2"], abs=1e-4) for r in log if r["kind"] == "train")
    meta = json.loads((tmp_path / "sympie_ema.safetensors.json").read_text())
    assert meta["downstream_model"] == "efficientnet_lite0" and meta["iterations"] == 30
    assert meta["corruption_pool"] == ["contrast"] and meta["n_train_images"] == 50 and meta["weights"] == "ema"
    assert meta["recipe"]["bn_mode"] == "calibrated" and meta["recipe"]["warp_parts"] == "colour"


def test_calibrated_batch_norms_hold_their_statistics_while_training() -> None:
    from robustbench_sympie.training.step import calibrate_batch_norms, set_training_mode

    student = Sympie(weights=None)
    images = [torch.rand(4, 3, 64, 64) for _ in range(3)]
    calibrate_batch_norms(student, images)
    stem = student.nem.backbone[1]
    x = (torch.cat(images) - student.mean) / student.std
    first = student.nem.backbone[0](x)
    assert torch.allclose(stem.running_mean, first.mean(dim=(0, 2, 3)), atol=1e-5)
    set_training_mode(student, "calibrated")
    assert student.training and not stem.training
    before = stem.running_mean.clone()
    student(torch.rand(2, 3, 64, 64))
    assert torch.equal(stem.running_mean, before)


def test_resume_continues_exactly(records, tmp_path: Path) -> None:
    train_records, held_out = records[2::9][:6], records[::9][:2]

    def run(out: Path, **overrides):
        torch.manual_seed(123)
        config = _config(out, seed=5, **overrides)
        return train(config, train_records=train_records, held_out_records=held_out)

    whole = run(tmp_path / "whole")
    half = run(tmp_path / "split", stop_after=2, checkpoint_every=1)
    assert not half.finished and half.step == 2 and half.student_weights is None
    torch.manual_seed(999)  # a different global state must not matter
    rest = run(tmp_path / "split", resume=True)
    assert rest.finished and rest.step == 4

    for name in ("last.pt",):
        a = torch.load(whole.checkpoint, weights_only=True)
        b = torch.load(tmp_path / "split" / name, weights_only=True)
        for part in ("student", "ema"):
            assert a[part].keys() == b[part].keys()
            for key in a[part]:
                assert torch.equal(a[part][key], b[part][key]), (part, key)
        assert a["optimizer"]["state"][0]["step"] == b["optimizer"]["state"][0]["step"]
    log = [json.loads(line) for line in (tmp_path / "split" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if r["kind"] == "train"] == [1, 2, 3, 4]


@pytest.mark.parametrize("setting", ["lr", "grad_clip", "head_lr"])
def test_nan_learning_rates_are_refused(tmp_path: Path, setting: str) -> None:
    from robustbench_sympie.training.config import TrainingConfigError

    with pytest.raises(TrainingConfigError, match="must be positive.*nan"):  # nan > 0 and nan <= 0 are both False
        _config(tmp_path, **{setting: float("nan")}).validate()


def test_unreadable_images_are_skipped_not_fatal(records, tmp_path: Path, caplog) -> None:
    """A truncated JPEG and a text file named .JPEG among the training and held-out images: each is skipped and
    logged by path; training samples then show the next readable record, the same whatever the workers."""
    import dataclasses
    import logging

    truncated, text = tmp_path / "n01440764_truncated.JPEG", tmp_path / "n01443537_text.JPEG"
    truncated.write_bytes(records[0].path.read_bytes()[:2000])
    text.write_text("not an image")
    bad = [dataclasses.replace(records[0], path=truncated), dataclasses.replace(records[1], path=text)]
    train_records = [bad[0], *records[2:5], bad[1]]
    dataset = CorruptedTrainingSet(train_records, ["fog"], seed=0, geometry=RandomCrop(RESIZE, CROP))
    with caplog.at_level(logging.WARNING, logger="robustbench_sympie.training.data"):
        image, label = dataset[(0, 0)]  # record 0 is unreadable: the sample shows record 1, drawn as record 1's
        assert label == train_records[1].label and image.shape == (3, CROP, CROP)
        assert torch.equal(image, dataset[(0, 1)][0])
        assert dataset[(1, 4)][1] == train_records[1].label  # the last one wraps around to the first readable
        held_out = build_held_out([*records[10:12], bad[0]], ["fog"], seed=0, preprocess=Preprocess(RESIZE, CROP))
    assert len(held_out) == 2 and held_out.image_ids == [r.image_id for r in records[10:12]]
    logged = caplog.text
    assert str(truncated) in logged and str(text) in logged and "held-out set: 1 unreadable" in logged
    result = train(_config(tmp_path / "run", iterations=2), train_records=train_records,
                   held_out_records=[*records[10:12], bad[1]])
    assert result.finished


def test_resume_refuses_other_settings(records, tmp_path: Path) -> None:
    from robustbench_sympie.training.config import TrainingConfigError

    config = _config(tmp_path, iterations=2, stop_after=1)
    train(config, train_records=records[:4], held_out_records=records[10:11])
    with pytest.raises(TrainingConfigError, match="batch_size"):
        train(_config(tmp_path, iterations=2, batch_size=2, resume=True), train_records=records[:4],
              held_out_records=records[10:11])


# -- command line ----------------------------------------------------------------------------------
def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "robustbench_sympie.cli.train_sympie", *args],
                          capture_output=True, text=True, timeout=120)


def test_cli_help_lists_flags_with_defaults() -> None:
    done = _cli("--help")
    assert done.returncode == 0
    for flag in ("--model", "--data-root", "--val-root", "--out", "--iterations", "--batch-size", "--lr",
                 "--ema-rate", "--workers", "--device", "--amp", "--checkpoint-every", "--eval-every", "--resume",
                 "--seed", "--corruptions", "--image-size", "--fp16-weights", "--head-lr", "--bias-lr",
                 "--freeze-backbone", "--bn-mode", "--clamp-in-training", "--warmup", "--warp-parts", "--warp-basis",
                 "--basis-kappa"):
        assert flag in done.stdout
    assert "(default: efficientnet_lite0)" in " ".join(done.stdout.split())



def test_cli_flags_are_the_config_fields() -> None:
    """Every TrainConfig field has its flag and every flag (but --help and the CLI-only ones) sets a field."""
    import dataclasses

    from robustbench_sympie.cli.train_sympie import CLI_ONLY_FLAGS, build_parser, flag_of

    parser_flags = {flag for action in build_parser()._actions for flag in action.option_strings
                    if flag.startswith("--") and not flag.startswith("--no-")} - {"--help", *CLI_ONLY_FLAGS}
    field_flags = {flag_of(spec) for spec in dataclasses.fields(TrainConfig)}
    assert len(field_flags) == len(dataclasses.fields(TrainConfig))
    assert parser_flags == field_flags
    assert flag_of(next(f for f in dataclasses.fields(TrainConfig) if f.name == "crop")) == "--image-size"


def test_cli_defaults_are_the_config_defaults(tmp_path: Path) -> None:
    from robustbench_sympie.cli.train_sympie import build_parser, config_from_args

    args = build_parser().parse_args(["--data-root", str(tmp_path / "data"), "--out", str(tmp_path / "out")])
    assert config_from_args(args) == TrainConfig(out=tmp_path / "out", data_root=tmp_path / "data")
    args = build_parser().parse_args(["--data-root", "d", "--out", "o", "--image-size", "128", "--workers", "0",
                                      "--severities", "1,2"])
    config = config_from_args(args)
    assert (config.crop, config.resize, config.workers, config.severities) == (128, 146, 0, (1, 2))


def test_config_field_lists_name_config_fields() -> None:
    import dataclasses

    from robustbench_sympie.training.config import RECIPE_KEYS, RESUME_KEYS

    names = {spec.name for spec in dataclasses.fields(TrainConfig)}
    assert set(RECIPE_KEYS) <= names
    assert set(RESUME_KEYS) - names == {"train_ids_sha256"}


def test_cli_help_imports_no_torch() -> None:
    code = ("import sys; from robustbench_sympie.cli.train_sympie import build_parser; build_parser().format_help(); "
            "print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"

@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data-root", "/no/such/dir"], "does not exist"),
        (["--corruptions", "darkn"], "Did you mean 'darken'"),
        (["--ema-rate", "1.5"], "ema_rate"),
        (["--resume"], "no checkpoint"),
        (["--basis-kappa", "0"], "basis_kappa"),
        (["--warmup", "5000"], "warmup"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(args: list[str], message: str, tmp_path: Path) -> None:
    base = ["--data-root", str(demo_data_root()), "--out", str(tmp_path / "out"), "--workers", "0"]
    done = _cli(*base, *args)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_bias_learning_rate_gets_its_own_group() -> None:
    from robustbench_sympie.training.step import parameter_groups

    student = Sympie(weights=None)
    assert len(parameter_groups(student, 1e-4, None)) == 1
    rest, bias = parameter_groups(student, 1e-4, 1e-2)
    assert bias["params"] == [student.nem.out.bias] and bias["lr"] == 1e-2 and rest["lr"] == 1e-4
    assert len(rest["params"]) == len(list(student.parameters())) - 1
    rest, bias, weight = parameter_groups(student, 1e-4, 1e-3, 1e-5)
    assert len(weight["params"]) == 1 and weight["params"][0] is student.nem.out.weight and weight["lr"] == 1e-5
    assert bias["params"][0] is student.nem.out.bias and bias["lr"] == 1e-3
