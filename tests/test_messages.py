"""What pyrolf tells the user: ids named in a message, notes and warnings on stderr."""

from pyrolf.messages import few_ids, note, notes_kept_back, warning


def test_a_few_ids_are_named_and_the_rest_counted_but_never_one_alone():
    assert few_ids([]) == "none"
    assert few_ids([3, 1, 2]) == "ids 3, 1, 2"
    assert few_ids(range(6), word="rows") == "rows 0, 1, 2, 3, 4, 5"  # not "(and 1 more)"
    assert few_ids(range(7)) == "ids 0, 1, 2, 3, 4 (and 2 more)"
    assert few_ids(range(4), shown=2) == "ids 0, 1 (and 2 more)"


def test_notes_can_be_kept_back_but_warnings_are_always_said(capsys):
    with notes_kept_back():
        note("read again")
        warning("the latents carry no information")
    note("worth knowing")
    assert capsys.readouterr().err == ("warning: the latents carry no information\n"
                                       "note: worth knowing\n")


def test_a_path_in_a_suggested_command_reaches_the_command_as_that_path():
    import os
    import shlex

    from pyrolf.messages import typed

    assert typed("runs/lorenz") == "runs/lorenz"  # nothing to quote: as the user wrote it
    assert typed("my run") == '"my run"'  # not in the single quotes a message puts commands in
    for path in ["my run", "dir with space/rün 1", "it's $HOME", "-dash", "a;b", "-x y/z",
                 'say "hi"', "back\\slash", "it's"]:
        words = shlex.split(f"pyrolf fit --resume {typed(path)}")
        assert len(words) == 4 and not words[-1].startswith("-")
        assert os.path.normpath(words[-1]) == os.path.normpath(path)
