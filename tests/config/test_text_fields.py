"""A text field takes text: a number where the schema says string is refused, naming the field."""

import pytest


@pytest.mark.parametrize("value", [0, 1.5, True])
def test_a_number_is_refused_where_text_is_expected(staff_client, db, value):
    response = staff_client.post("/api/providers/", {"name": value}, format="json")

    assert (response.status_code, list(response.json())) == (400, ["name"])
