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
