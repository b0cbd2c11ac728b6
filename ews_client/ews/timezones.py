"""IANA <-> Windows time-zone names.

EWS names zones by their Windows id (`t:StartTimeZone Id="W. Europe Standard Time"`); the model
keeps IANA names. The map is CLDR's windowsZones as `tzlocal` ships it (`tz_win`: every IANA
zone CLDR lists -> its Windows id; `win_tz`: each Windows id -> its primary, territory "001",
IANA zone), so it is not kept by hand here. A zone outside it is refused rather than guessed.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from tzlocal.windows_tz import tz_win, win_tz

from ews_client.errors import ItemRejectedError, ProtocolError

# Where we answer differently from CLDR, and why:
# - the model spells UTC "UTC" (CLDR's primary zone for the Windows "UTC" id is "Etc/UTC");
# - CLDR's primary zone for India is the old spelling "Asia/Calcutta": we keep the current name;
# - Windows ids new in 2025 ("British Columbia Standard Time") are unknown to Exchange
#   servers whose Windows has not been updated, while the older id means the same clock.
_WINDOWS_OVERRIDES = {"America/Vancouver": "Pacific Standard Time"}
_IANA_OVERRIDES = {"UTC": "UTC", "India Standard Time": "Asia/Kolkata"}

# CLDR lists one zone with an empty IANA name (a placeholder): never a zone anyone names.
IANA_TO_WINDOWS: Mapping[str, str] = MappingProxyType(
    {**{iana: win for iana, win in tz_win.items() if iana}, **_WINDOWS_OVERRIDES}
)
WINDOWS_TO_IANA: Mapping[str, str] = MappingProxyType({**win_tz, **_IANA_OVERRIDES})


def to_windows(iana: str) -> str:
    """Windows id for an IANA zone; ItemRejectedError for a zone we do not map."""
    try:
        return IANA_TO_WINDOWS[iana]
    except KeyError:
        raise ItemRejectedError(f"unsupported time zone {iana!r}", code="TimeZone") from None


def to_iana(windows: str) -> str:
    """IANA name for a Windows id (an IANA name is passed through, as some servers send it)."""
    if windows in WINDOWS_TO_IANA:
        return WINDOWS_TO_IANA[windows]
    if windows in IANA_TO_WINDOWS:
        return windows
    raise ProtocolError(f"unknown time zone id {windows!r}")
