"""The tests' one polling helper: its result, and a timeout message that shows the state at the timeout."""

import pytest

from hack.cluster.testing import wait_until


def test_returns_the_first_truthy_value():
    values = iter([None, 0, "ready"])
    assert wait_until(lambda: next(values), timeout=5, interval=0) == "ready"


def test_a_callable_description_is_asked_at_the_timeout():
    state = {"left": ["pod/a"]}
    asked = []

    def describe() -> str:
        asked.append(True)
        return f"nothing left; left: {state['left']}"

    with pytest.raises(TimeoutError, match=r"waiting for nothing left; left: \['pod/a', 'pod/b'\]"):
        wait_until(lambda: state["left"].append("pod/b") if len(state["left"]) < 2 else False,
                   timeout=0.2, interval=0.01, what=describe)
    assert asked == [True]
