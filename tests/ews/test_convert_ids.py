"""EwsClient.convert_ids against the simulator over real HTTP: ids in chunks within the
per-call size, per-id errors in place, a moved mailbox raised; requests schema-valid."""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Callable

import pytest

from ews_client.errors import ExchangeError, MailboxError
from ews_client.ews.convert_ids import MAX_IDS_PER_CALL, IdFormat, build_convert_id
from ews_client.io.auth import BasicAuth
from ews_client.io.ews import EwsClient
from ews_client.simulator import moves
from ews_client.simulator.testing import running_simulator

BOX = "user00001@sim.example"


def test_the_request_is_schema_valid_and_bounded(assert_valid: Callable[[bytes], None]) -> None:
    assert_valid(build_convert_id(BOX, ["a", "b"], IdFormat.EWS_ID, IdFormat.ENTRY_ID))
    with pytest.raises(ValueError, match="1 to 100 ids"):
        build_convert_id(BOX, ["a"] * (MAX_IDS_PER_CALL + 1), IdFormat.EWS_ID, IdFormat.ENTRY_ID)


async def test_ids_convert_in_chunks_and_survive_a_move_through_their_entry_ids() -> None:
    calls: Counter[str] = Counter()
    async with running_simulator() as sim:
        sim.sim.add_numbered(1, items_per_folder=85)  # 255 items: three requests
        box = sim.sim.mailboxes[BOX]
        before = list(box.items)
        auth = BasicAuth(sim.username, sim.password)
        on_request = lambda op, outcome, s: calls.update([f"{op} {outcome}"])  # noqa: E731
        async with EwsClient(sim.ews_url, auth, on_request=on_request) as client:
            entries = await client.convert_ids(BOX, before, IdFormat.EWS_ID, IdFormat.ENTRY_ID)
            assert calls == {"ConvertId ok": 3}
            assert all(isinstance(e, str) for e in entries) and len(set(entries)) == 255
            moves.move(box, sim.sim.access, moves.Persona.GRAPH)
            moves.move(box, sim.sim.access, moves.Persona.EWS)
            texts = [str(e) for e in entries]
            now = await client.convert_ids(BOX, texts, IdFormat.ENTRY_ID, IdFormat.EWS_ID)
            assert now == list(box.items) and not set(now) & set(before)
            hexes = await client.convert_ids(
                BOX, [str(i) for i in now[:3]], IdFormat.EWS_ID, IdFormat.HEX_ENTRY_ID
            )
            assert [bytes.fromhex(str(h)) for h in hexes] == [
                base64.b64decode(e) for e in texts[:3]
            ]
        assert sim.sim.invalid_requests == [] and sim.sim.invalid_responses == []


async def test_a_bad_id_is_an_error_in_its_place_and_a_moved_mailbox_is_raised() -> None:
    async with running_simulator() as sim:
        sim.sim.add_numbered(1, items_per_folder=2)
        box = sim.sim.mailboxes[BOX]
        good = next(iter(box.items))
        auth = BasicAuth(sim.username, sim.password)
        async with EwsClient(sim.ews_url, auth) as client:
            answer = await client.convert_ids(
                BOX, [good, "not-an-id"], IdFormat.EWS_ID, IdFormat.ENTRY_ID
            )
            assert isinstance(answer[0], str)
            assert isinstance(answer[1], ExchangeError)
            assert answer[1].code == "ErrorInvalidIdMalformed"
            moves.move(box, sim.sim.access, moves.Persona.GRAPH)
            with pytest.raises(MailboxError) as raised:
                await client.convert_ids(BOX, [good], IdFormat.EWS_ID, IdFormat.ENTRY_ID)
            assert raised.value.code == "ErrorNonExistentMailbox"
        assert sim.sim.invalid_requests == [] and sim.sim.invalid_responses == []
