"""A To Do task list's delta as Microsoft's SDK pages it: the first round pages by nextLink to
a deltaLink, the deltaLink then reports a changed task and an `@removed` one, and every answer
names the immutable id preference it applied."""

from __future__ import annotations

from typing import Any

from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_http.middleware.options import HeadersInspectionHandlerOption
from msgraph import GraphServiceClient
from msgraph.generated.models.todo_task import TodoTask

from .conftest import BOX

IMMUTABLE = 'IdType="ImmutableId"'


def config() -> tuple[RequestConfiguration[Any], HeadersInspectionHandlerOption]:
    option = HeadersInspectionHandlerOption(inspect_response_headers=True)
    made: RequestConfiguration[Any] = RequestConfiguration(options=[option])
    made.headers.add("Prefer", IMMUTABLE)
    made.headers.add("Prefer", "odata.maxpagesize=2")
    return made, option


async def test_task_delta_pages_to_its_delta_link_then_reports_changes(
    graph: GraphServiceClient,
) -> None:
    lists = await graph.users.by_user_id(BOX).todo.lists.get()
    assert lists is not None and lists.value and lists.value[0].id
    tasks = graph.users.by_user_id(BOX).todo.lists.by_todo_task_list_id(lists.value[0].id).tasks
    made = [await tasks.post(TodoTask(title=f"Task {n}")) for n in range(5)]
    ids = [t.id for t in made if t is not None]
    assert len(ids) == 5

    seen: list[str] = []
    pages = 0
    request, option = config()
    page = await tasks.delta.get(request)
    while True:
        assert page is not None
        pages += 1
        assert any(IMMUTABLE in v for v in option.response_headers.get("preference-applied"))
        seen.extend(t.id or "" for t in page.value or [])
        if page.odata_next_link is None:
            break
        assert page.odata_delta_link is None  # only the last page carries the deltaLink
        request, option = config()
        page = await tasks.delta.with_url(page.odata_next_link).get(request)
    assert pages >= 3  # five tasks at two a page
    assert sorted(seen) == sorted(ids)
    delta_link = page.odata_delta_link
    assert delta_link

    changed, gone = ids[1], ids[3]
    await tasks.by_todo_task_id(changed).patch(TodoTask(title="Renamed"))
    await tasks.by_todo_task_id(gone).delete()

    request, option = config()
    after = await tasks.delta.with_url(delta_link).get(request)
    assert after is not None
    assert any(IMMUTABLE in v for v in option.response_headers.get("preference-applied"))
    by_id = {t.id: t for t in after.value or []}
    assert set(by_id) == {changed, gone}
    assert by_id[changed].title == "Renamed"
    assert "@removed" in by_id[gone].additional_data
    assert "@removed" not in by_id[changed].additional_data
    assert after.odata_delta_link
