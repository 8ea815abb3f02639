"""nanoseg/cli.py: every CLI's run() turns a NanosegError into one ``error:`` line and exit 2,
Ctrl-C into 130, and main's result into the exit status; --help shows the defaults."""
import argparse
import logging

import pytest

from nanoseg import cli, files
from nanoseg.errors import NanosegError


def _parse(argv):
    parser = cli.make_parser("a test command")
    cli.add_bundle_arg(parser)
    cli.add_logging_args(parser)
    return parser.parse_args(argv)


def test_a_nanoseg_error_is_one_line_and_exit_2(capsys):
    def main(args):
        raise NanosegError("bundle {} has no contract.json: train it first".format(args.bundle))
    assert cli.run(main, _parse, ["--bundle", "b"]) == 2
    captured = capsys.readouterr()
    assert captured.err == "error: bundle b has no contract.json: train it first\n"
    assert captured.out == ""


def test_ctrl_c_is_exit_130_and_other_errors_keep_their_traceback(capsys):
    def interrupted(args):
        raise KeyboardInterrupt()

    def buggy(args):
        raise ValueError("a bug")
    assert cli.run(interrupted, _parse, ["--bundle", "b"]) == 130
    assert capsys.readouterr().err == "interrupted\n"
    with pytest.raises(ValueError, match="a bug"):
        cli.run(buggy, _parse, ["--bundle", "b"])


@pytest.mark.parametrize("result, status", [(None, 0), (0, 0), (1, 1), (3, 3)])
def test_mains_result_is_the_exit_status(result, status):
    assert cli.run(lambda args: result, _parse, ["--bundle", "b"]) == status


def test_help_shows_defaults_and_the_bundle_is_required(capsys):
    with pytest.raises(SystemExit):
        _parse(["--help"])
    out = capsys.readouterr().out
    assert "a test command" in out and "(default: INFO)" in out
    with pytest.raises(SystemExit) as info:
        _parse([])
    assert info.value.code == 2 and "--bundle" in capsys.readouterr().err
    parser = argparse.ArgumentParser()
    cli.add_bundle_arg(parser, required=False)
    assert parser.parse_args([]).bundle is None


def test_setup_logging_takes_a_level_name(monkeypatch):
    seen = {}
    monkeypatch.setattr(logging, "basicConfig", lambda **kwargs: seen.update(kwargs))
    cli.setup_logging("warning")
    assert seen["level"] == logging.WARNING and seen["format"] == cli.LOG_FORMAT
    cli.setup_logging("nonsense")
    assert seen["level"] == logging.INFO


def test_a_write_on_a_full_disk_is_one_line_and_exit_status_2(nearly_full_folder, capsys):
    target = nearly_full_folder + "/report.bin"

    def main(args):
        files.write_bytes_atomic(target, b"\0" * (256 * 1024))

    assert cli.run(main, lambda argv: None, []) == 2
    assert capsys.readouterr().err == "error: cannot write {}: No space left on device: " \
        "free space there (or make it writable) and run again\n".format(target)


def test_other_exceptions_still_raise_from_cli_run():
    def main(args):
        raise ValueError("a bug")

    with pytest.raises(ValueError, match="a bug"):
        cli.run(main, lambda argv: None, [])
