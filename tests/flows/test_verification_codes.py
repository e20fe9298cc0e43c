"""mask_destination: how a phone number or e-mail address may appear in a log line."""

from __future__ import annotations

import pytest

from bff.flows import mask_destination

MASKED = [
    ("+86-13800000000", "+86-138****0000"),
    ("+86-13912345678", "+86-139****5678"),
    ("+1-4155550123", "+1-415****0123"),
    ("+852-91234567", "+852-912****4567"),
    ("+49-1234567", "+49-****67"),  # short national numbers keep only two digits
    ("+7-12345", "+7-****45"),
    ("alice@example.com", "a***@example.com"),
    ("a@example.com", "***@example.com"),  # one letter would be the whole local part
    ("first.last+tag@mail.example.org", "f***@mail.example.org"),
    ("13800000000", "***"),  # not in the IDaaS form: nothing of it is logged
    ("", "***"),
    ("@example.com", "***"),
    ("alice@", "***"),
]


@pytest.mark.parametrize(("to", "masked"), MASKED)
def test_mask_destination(to, masked):
    assert mask_destination(to) == masked


@pytest.mark.parametrize("to", [to for to, _ in MASKED if to])
def test_the_masked_form_never_holds_the_whole_destination(to):
    assert to not in mask_destination(to)
