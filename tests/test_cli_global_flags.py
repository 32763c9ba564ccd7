"""Global flags (-v/--verbose, -q/--quiet, --version) work before and after the verb, for every verb."""

from __future__ import annotations

import argparse

import pytest

from batteryless.cli import build_parser, main, parse_args


def _verbs() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _minimal_argv(p: argparse.ArgumentParser) -> list[str]:
    """The verb's required arguments with placeholder values (parsing only: nothing runs)."""
    argv: list[str] = []
    for a in p._actions:
        if isinstance(a, argparse._HelpAction | argparse._VersionAction):
            continue
        if isinstance(a, argparse._SubParsersAction):  # a verb with sub-verbs: take the first
            name = next(iter(a.choices))
            argv += [name, *_minimal_argv(a.choices[name])]
            continue
        value = str(next(iter(a.choices))) if a.choices else "1"  # "1" parses as a str, int or float
        if not a.option_strings:
            n = a.nargs if isinstance(a.nargs, int) else 1 if a.nargs in (None, "+") else 0
            argv += [value] * n
        elif a.required:
            argv += [a.option_strings[-1], value]
    return argv


VERBS = sorted(_verbs())


def test_every_verb_is_covered():
    # the verbs the README walks through, at least; a verb added later is covered by the loop below
    readme_verbs = {"compress", "evaluate", "codegen", "build", "run", "emulate", "flash", "bsl-emulator"}
    assert readme_verbs <= set(VERBS)


@pytest.mark.parametrize("verb", VERBS)
def test_flags_before_and_after_the_verb(verb):
    rest = _minimal_argv(_verbs()[verb])
    plain = parse_args([verb, *rest])
    assert plain.verbose == 0 and plain.quiet is False
    for argv in (
        ["-q", verb, *rest],
        [verb, *rest, "-q"],
        [verb, "--quiet", *rest],
    ):
        a = parse_args(argv)
        assert a.quiet is True and a.verbose == 0, argv
    for argv, level in (
        (["-v", verb, *rest], 1),
        ([verb, *rest, "-v"], 1),
        ([verb, *rest, "--verbose", "-v"], 2),
        (["-v", verb, *rest, "-v"], 2),  # before and after add up
    ):
        a = parse_args(argv)
        assert a.verbose == level and a.quiet is False, argv
    a = parse_args(["-q", verb, *rest, "-v"])
    assert a.quiet is True and a.verbose == 1
    # no stray fields: commands see exactly what they saw before the flags could follow the verb
    assert set(vars(a)) == set(vars(plain))


@pytest.mark.parametrize("verb", VERBS)
def test_version_after_the_verb(verb, capsys):
    with pytest.raises(SystemExit) as info:
        parse_args([verb, "--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith("batteryless ")


def test_verbose_after_the_verb_reaches_the_error_path(tmp_path, capsys, caplog):
    """-v after the verb really turns on tracebacks (the error path reads args.verbose)."""
    missing = str(tmp_path / "missing.bl")
    assert main(["evaluate", missing]) == main(["evaluate", missing, "-v"]) != 0
    # one traceback (logged with exc_info by the -v run), and both runs print the one-line error
    assert [r.exc_info is not None for r in caplog.records if r.name == "batteryless"] == [True]
    assert capsys.readouterr().err.count("missing.bl: no such artifact file") == 2


def test_unknown_flag_after_the_verb_is_still_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["evaluate", "x.bl", "--no-such-flag"])
    assert info.value.code == 2
    assert "--no-such-flag" in capsys.readouterr().err
