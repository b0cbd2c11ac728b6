"""The Windows <-> IANA map taken from CLDR (through tzlocal), with our three overrides."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from ews_client.errors import ItemRejectedError, ProtocolError
from ews_client.ews.timezones import IANA_TO_WINDOWS, WINDOWS_TO_IANA, to_iana, to_windows

WELL_KNOWN = [  # (IANA, Windows), the same both ways
    ("UTC", "UTC"),
    ("Europe/London", "GMT Standard Time"),
    ("Europe/Berlin", "W. Europe Standard Time"),
    ("Europe/Paris", "Romance Standard Time"),
    ("Europe/Moscow", "Russian Standard Time"),
    ("Asia/Kolkata", "India Standard Time"),
    ("Asia/Tokyo", "Tokyo Standard Time"),
    ("Australia/Sydney", "AUS Eastern Standard Time"),
    ("America/New_York", "Eastern Standard Time"),
    ("America/Los_Angeles", "Pacific Standard Time"),
    ("America/Sao_Paulo", "E. South America Standard Time"),
    ("America/Mexico_City", "Central Standard Time (Mexico)"),
]
ONE_WAY = [  # IANA -> Windows only: the Windows id names another primary zone
    ("Etc/UTC", "UTC"),
    ("Europe/Amsterdam", "W. Europe Standard Time"),
    ("Europe/Kyiv", "FLE Standard Time"),
    ("America/Toronto", "Eastern Standard Time"),
    ("America/Vancouver", "Pacific Standard Time"),  # not CLDR's new id: older servers lack it
]


@pytest.mark.parametrize(("iana", "windows"), WELL_KNOWN)
def test_well_known_zones_both_ways(iana: str, windows: str) -> None:
    assert to_windows(iana) == windows
    assert to_iana(windows) == iana


@pytest.mark.parametrize(("iana", "windows"), ONE_WAY)
def test_secondary_zones_map_to_their_windows_id(iana: str, windows: str) -> None:
    assert to_windows(iana) == windows
    assert to_iana(iana) == iana  # an IANA name in a Windows field is passed through


def test_unknown_zones_are_refused() -> None:
    with pytest.raises(ItemRejectedError):
        to_windows("Mars/Olympus_Mons")
    with pytest.raises(ItemRejectedError):
        to_windows("")
    with pytest.raises(ProtocolError):
        to_iana("Mars Standard Time")


def test_every_zone_of_the_map_is_a_zone_python_knows() -> None:
    for name in {*IANA_TO_WINDOWS, *WINDOWS_TO_IANA.values()}:
        ZoneInfo(name)


def test_each_windows_id_comes_back_to_itself() -> None:
    back = {w: to_windows(to_iana(w)) for w in WINDOWS_TO_IANA}
    # CLDR's own id for British Columbia is read, but we write the older one (see above).
    assert {w: b for w, b in back.items() if w != b} == {
        "British Columbia Standard Time": "Pacific Standard Time"
    }
