import pytest

from nofrost.epsilon import parse_eps


@pytest.mark.parametrize("text, value", [("8/255", 8 / 255), ("0.03", 0.03), (0.5, 0.5), (0, 0.0), ("1", 1.0), (" 4/255 ", 4 / 255)])
def test_accepts_fractions_and_floats(text, value):
    assert parse_eps(text) == pytest.approx(value)


@pytest.mark.parametrize("text, fragment", [("8", "did you mean 8/255"), (16, "did you mean 16/255"), ("-0.1", "a number in [0, 1]"),
                                            ("abc", "8/255"), ("1/0", "8/255"), ("nan", "a number in [0, 1]"), (True, "number")])
def test_rejects_with_a_suggestion(text, fragment):
    with pytest.raises(ValueError) as info:
        parse_eps(text)
    assert fragment in str(info.value)


def test_l2_radii_may_exceed_one():
    assert parse_eps("3.0", norm="l2") == 3.0 and parse_eps("128/255", norm="l2") == pytest.approx(128 / 255)
    for bad, fragment in (("-1", "finite number >= 0"), ("inf", "finite number >= 0"), ("x", "cannot read")):
        with pytest.raises(ValueError, match=fragment):
            parse_eps(bad, what="--eps", norm="l2")
