"""The ``run_suite`` command: instant help, listing, errors, and a real end-to-end run."""

from __future__ import annotations

import argparse
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from robustbench_sympie.cli.run_suite import build_parser, main, parse_severities


def test_help_does_not_import_torch():
    code = "import sys; from robustbench_sympie.cli.run_suite import build_parser; build_parser().format_help(); " \
           "print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
    help_text = subprocess.run(["run_suite", "--help"], capture_output=True, text=True, check=True).stdout
    for flag in ("--enhancer", "--model", "--data-root", "--corruptions", "--severities", "--out", "--device",
                 "--weights", "--enhancer-weights", "--workers", "--limit", "--list"):
        assert flag in help_text


def test_list_shows_every_registry(capsys):
    assert main(["--list"]) == 0
    out = capsys.readouterr().out
    for name in ("identity", "resnet50", "vit_b_16", "efficientnet_lite0", "imagenet-c", "glass_blur", "saturate"):
        assert name in out


def test_severity_parsing():
    assert parse_severities("1-5") == [1, 2, 3, 4, 5]
    assert parse_severities("3,1") == [1, 3]
    assert parse_severities("3,") == [3]
    for text, message in (("3-1", "range '3-1' is empty: write it low-high, e.g. 1-3"), ("1-", "must look like"),
                          ("", "names no severity"), ("6", "within 1..5"), ("a", "must look like")):
        with pytest.raises(argparse.ArgumentTypeError, match=re.escape(message)):
            parse_severities(text)


def test_negative_workers_are_refused_before_anything_runs(capsys, tmp_path: Path):
    for command in ("run_suite", "build_dataset"):
        parser = importlib.import_module(f"robustbench_sympie.cli.{command}").build_parser()
        with pytest.raises(SystemExit):
            parser.parse_args([*(["imagenet-c", "--source", "x", "--out", "y"] if command == "build_dataset" else []),
                               "--workers", "-1"])
        assert "argument --workers: expected an integer >= 0, got '-1'" in capsys.readouterr().err


def test_bad_input_is_one_clear_line(capsys, tmp_path: Path):
    assert main(["--enhancer", "identty", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "Did you mean 'identity'?" in err and "Traceback" not in err
    assert main(["--data-root", str(tmp_path / "missing"), "--out", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_end_to_end_on_real_images_with_efficientnet_lite0(few_images: Path, tmp_path: Path, capsys):
    out = tmp_path / "out"
    argv = ["--enhancer", "identity", "--model", "efficientnet_lite0", "--data-root", str(few_images),
            "--corruptions", "clean,gaussian_noise", "--severities", "3", "--out", str(out), "--workers", "0",
            "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "identity @ efficientnet_lite0" in printed and "gaussian_noise" in printed
    frame = pd.read_csv(out / "results.csv")
    clean = frame[frame.corruption == "clean"].iloc[0]
    noisy = frame[frame.corruption == "gaussian_noise"].iloc[0]
    assert clean.n == noisy.n == 6 and clean.severity == 0 and noisy.severity == 3
    assert clean.top1 >= 4 / 6  # a real ImageNet model on real images
    assert noisy.top1 <= clean.top1
    assert (out / "summary.md").read_text().startswith("top-1 accuracy")
    assert main(argv) == 0  # rerun: resumes, nothing left to do
    assert len(pd.read_csv(out / "results.csv")) == 2


@pytest.mark.parametrize("command", ["run_suite", "publish_leaderboard", "check_regression", "build_dataset",
                                     "train_sympie"])
def test_help_states_each_default_once(command: str):
    parser = importlib.import_module(f"robustbench_sympie.cli.{command}").build_parser()
    for action in parser._actions:
        help_text = parser.formatter_class(parser.prog)._get_help_string(action) or ""
        assert help_text.lower().count("default:") <= 1, f"{command} {action.option_strings}: {help_text}"
    assert "(default: 256)" in build_parser().format_help()  # a flag that does not say it gets argparse's note


def test_an_out_that_is_a_file_is_one_clear_line(few_images: Path, tmp_path: Path, capsys):
    from robustbench_sympie.cli.build_dataset import main as build_dataset
    from robustbench_sympie.cli.train_sympie import main as train_sympie

    afile = tmp_path / "afile.txt"
    afile.write_text("")
    assert build_dataset(["imagenet-c", "--source", str(few_images), "--out", str(afile), "--corruptions", "clean",
                          "--workers", "0", "--no-progress"]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert train_sympie(["--data-root", str(few_images), "--out", str(afile), "--iterations", "1", "--workers", "0",
                         "--device", "cpu", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "is a file, not a folder" in err and "Traceback" not in err
