"""User errors and bugs are told apart: input posekit judged unusable is one line and exit 2;
anything else is a bug, shown with its traceback and a request to report it (exit 70)."""

from __future__ import annotations

import inspect

import pytest

import posekit
from posekit.cli.main import main
from posekit.utils.errors import BUG_EXIT_CODE, UserError, one_line


def _error_classes() -> list[type[BaseException]]:
    import posekit.data.images
    import posekit.data.problems
    import posekit.export
    import posekit.export.metadata
    import posekit.predict.sources
    import posekit.schema.schema
    import posekit.utils.hdf5
    import posekit.utils.outputs
    import posekit.utils.paths
    import posekit.utils.serialization

    modules = [posekit.data.images, posekit.data.problems, posekit.export,
               posekit.export.metadata, posekit.predict.sources, posekit.schema.schema,
               posekit.utils.hdf5, posekit.utils.outputs, posekit.utils.paths,
               posekit.utils.serialization]  # fmt: skip
    return [c for m in modules for _, c in inspect.getmembers(m, inspect.isclass)
            if issubclass(c, Exception) and c.__module__ == m.__name__]  # fmt: skip


def test_every_posekit_input_error_is_a_user_error() -> None:
    classes = _error_classes()
    assert len(classes) >= 10
    assert all(issubclass(c, UserError) for c in classes), classes


def test_a_user_error_is_one_line_and_exit_2(tmp_path, capsys) -> None:
    rc = main(["data", "check", str(tmp_path / "nothing.json")])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("posekit: error: ") and err.count("\n") == 1
    assert "Traceback" not in err


def test_a_bug_shows_its_traceback_and_asks_for_a_report(tmp_path, monkeypatch, capsys) -> None:
    """Before: every ValueError, a bug's too, was printed as a user error, e.g. numpy's
    'high - low < 0' with exit 2 and nothing to report."""

    def broken(*args, **kwargs):
        raise ValueError("high - low < 0")  # what numpy says, not a judgement of the input

    monkeypatch.setattr("posekit.cli.data.generate", broken)
    rc = main(["data", "synth", "--images", "2", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == BUG_EXIT_CODE
    assert "Traceback (most recent call last)" in err and "ValueError: high - low < 0" in err
    assert f"this is a bug in posekit {posekit.__version__}; please report it" in err


def test_an_error_from_a_data_loading_worker_is_its_original_line() -> None:
    wrapped = UserError(
        "Caught ImageReadError in DataLoader worker process 0.\nOriginal Traceback (most "
        'recent call last):\n  File "x.py", line 1, in f\nposekit.data.images.ImageReadError:'
        " a.jpg: not an image (run `posekit data check`)"
    )
    assert one_line(wrapped) == "a.jpg: not an image (run `posekit data check`)"
    assert one_line(UserError("two\nlines")) == "two lines"


@pytest.mark.parametrize("bad", [["--imgsz", "-5"], ["--images", "0"]])
def test_an_option_out_of_range_is_a_user_error(bad, tmp_path, capsys) -> None:
    assert main(["data", "synth", *bad, "--out", str(tmp_path / "out")]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_log_records_go_to_stderr_one_unwrapped_line_each(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """stdout carries only a command's data (`track --save-jsonl -`); a record is one line
    however long, when the log is not a terminal (a file, journald, docker)."""
    import logging

    from posekit.cli.logs import setup_logging

    logger = logging.getLogger("posekit")
    saved = list(logger.handlers)
    logger.handlers = [h for h in logger.handlers if h.get_name() != "posekit-cli"]
    try:
        setup_logging()
        setup_logging()  # idempotent: one handler
        long = "refused (token): " + "x" * 300
        logging.getLogger("posekit.serve").warning(long)
        out, err = capsys.readouterr()
    finally:
        logger.handlers = saved
    assert out == "" and err.splitlines() == [f"WARNING  {long}"]
