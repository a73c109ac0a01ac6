"""The chatbot settings pages: what each role sees, saving section by section through the
API's validation, errors next to their field, the absence switch and the live preview."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.domain.clock import FixedClock
from tests.api.conftest import ADMIN, N1, N2, SETTINGS
from tests.conftest import ADMIN_TOKEN
from tests.console.conftest import HTMX, Desk, sign_in

SETTINGS_URL = f"/console/numbers/{N1}/settings"
# São Paulo is UTC-3: Monday 2026-11-30 20:00 local (closed), and 10:00 local (open).
MON_20 = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
MON_10 = datetime(2026, 11, 30, 13, 0, tzinfo=UTC)


class Forms(HTMLParser):
    """Every form of a page: action → the fields a browser would submit unchanged."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: dict[str, list[tuple[str, str]]] = {}
        self._action: str | None = None
        self._select: str | None = None
        self._textarea: str | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "template":
            self._action_saved = self._action
            self._action = None  # rows added by JavaScript are not submitted
        elif tag == "form" and a.get("method") == "post":
            self._action = a["action"]
            self.forms[self._action] = []
        elif self._action is None:
            return
        elif tag == "input" and "name" in a:
            if a.get("type") in ("checkbox", "radio") and "checked" not in a:
                return
            self.forms[self._action].append(
                (a["name"], a.get("value", "on" if a.get("type") == "checkbox" else ""))
            )
        elif tag == "select" and "name" in a:
            self._select = a["name"]
        elif tag == "option" and self._select is not None and "selected" in a:
            self.forms[self._action].append((self._select, a["value"]))
        elif tag == "textarea" and "name" in a:
            self._textarea, self._text = a["name"], ""

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "template":
            self._action = self._action_saved
        elif tag == "form":
            self._action = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea" and self._textarea is not None and self._action is not None:
            self.forms[self._action].append((self._textarea, self._text))
            self._textarea = None


def forms_of(html: str) -> dict[str, list[tuple[str, str]]]:
    parser = Forms()
    parser.feed(html)
    return parser.forms


async def version(client: TestClient[Any, Any], number: str = N1) -> int:
    data = await (await client.get(f"/api/v1/numbers/{number}", headers=ADMIN)).json()
    return int(data["version"])


async def test_every_section_submitted_unchanged_saves_nothing(
    client: TestClient[Any, Any], desk: Desk
) -> None:
    """The page shows the stored settings (API.md's example: two intervals on Monday, a
    Saturday past midnight, three exceptions, holidays) exactly as the forms read them back."""
    await sign_in(client, ADMIN_TOKEN)
    before = await (await client.get(f"/api/v1/numbers/{N1}", headers=ADMIN)).json()
    forms = forms_of(await (await client.get(SETTINGS_URL)).text())
    sections = [a for a in forms if "/settings/" in a]
    assert len(sections) == 6
    for action in sections:
        resp = await client.post(action, data=forms[action], allow_redirects=False)
        assert resp.status == 303, (action, await resp.text())
    after = await (await client.get(f"/api/v1/numbers/{N1}", headers=ADMIN)).json()
    assert after == before


def hours_form(csrf: str, **fields: str) -> dict[str, str]:
    base = {
        "csrf": csrf,
        "service_hours.weekly.mon[0].start": "09:00",
        "service_hours.weekly.mon[0].end": "18:00",
    }
    base.update(fields)
    return base


# (form fields of a section, the section, the equivalent API merge patch)
INVALID = [
    pytest.param(
        "hours",
        {"service_hours.weekly.mon[0].end": "09:00"},
        {"service_hours": {"weekly": {"mon": [{"start": "09:00", "end": "09:00"}]}}},
        id="empty-interval",
    ),
    pytest.param(
        "hours",
        {"service_hours.weekly.tue[0].start": "25:00", "service_hours.weekly.tue[0].end": "26:00"},
        {"service_hours": {"weekly": {"tue": [{"start": "25:00", "end": "26:00"}]}}},
        id="bad-time",
    ),
    pytest.param(
        "hours",
        {
            "service_hours.weekly.mon[1].start": "17:00",
            "service_hours.weekly.mon[1].end": "19:00",
        },
        {
            "service_hours": {
                "weekly": {
                    "mon": [
                        {"start": "09:00", "end": "18:00"},
                        {"start": "17:00", "end": "19:00"},
                    ]
                }
            }
        },
        id="overlap",
    ),
    pytest.param(
        "hours",
        {
            "service_hours.exceptions[0].date": "2026-12-25",
            "service_hours.exceptions[0].end_date": "2026-12-20",
            "service_hours.exceptions[0].kind": "closed",
        },
        {
            "service_hours": {
                "exceptions": [{"date": "2026-12-25", "end_date": "2026-12-20", "closed": True}]
            }
        },
        id="exception-range",
    ),
    pytest.param(
        "hours",
        {
            "service_hours.exceptions[0].date": "2026-12-24",
            "service_hours.exceptions[0].kind": "hours",
            "service_hours.exceptions[0].hours": "09:00-09:00",
        },
        {
            "service_hours": {
                "exceptions": [
                    {"date": "2026-12-24", "hours": [{"start": "09:00", "end": "09:00"}]}
                ]
            }
        },
        id="exception-hours",
    ),
    pytest.param(
        "hours",
        {"service_hours.holidays.country": "XX"},
        {"service_hours": {"holidays": {"country": "XX"}}},
        id="holiday-country",
    ),
    pytest.param(
        "absence",
        {
            "absence.suggested_agent.name": "João",
            "absence.suggested_agent.phone": "11999990000",
        },
        {"absence": {"suggested_agent": {"name": "João", "phone": "11999990000"}}},
        id="absence-phone",
    ),
    pytest.param(
        "absence",
        {"absence.starts_at": "2026-12-10T09:00", "absence.ends_at": "2026-12-01T09:00"},
        {
            "absence": {
                "starts_at": "2026-12-10T09:00:00-03:00",
                "ends_at": "2026-12-01T09:00:00-03:00",
            }
        },
        id="absence-dates",
    ),
    pytest.param(
        "after_hours",
        {"after_hours.message": "Back {soon}"},
        {"after_hours": {"message": "Back {soon}"}},
        id="placeholder",
    ),
    pytest.param(
        "cooldown",
        {"auto_reply_cooldown_minutes": "0"},
        {"auto_reply_cooldown_minutes": 0},
        id="cooldown",
    ),
    pytest.param("general", {"timezone": "Mars/Olympus"}, {"timezone": "Mars/Olympus"}, id="zone"),
]


@pytest.mark.parametrize(("section", "fields", "patch"), INVALID)
async def test_an_invalid_value_is_shown_next_to_its_field_with_the_api_s_path(
    client: TestClient[Any, Any],
    desk: Desk,
    section: str,
    fields: dict[str, str],
    patch: dict[str, Any],
) -> None:
    api = await client.patch(f"/api/v1/numbers/{N1}", json=patch, headers=ADMIN)
    assert api.status == 422
    field = (await api.json())["error"]["field"]
    csrf = await sign_in(client, ADMIN_TOKEN)
    before = await version(client)
    base: dict[str, str] = {"csrf": csrf}
    if section == "hours":
        base = hours_form(csrf)
    elif section == "general":
        base.update({"timezone": "America/Sao_Paulo", "language": "pt-BR"})
    resp = await client.post(f"{SETTINGS_URL}/{section}", data={**base, **fields}, headers=HTMX)
    html = await resp.text()
    assert resp.status == 422
    assert f'<section id="section-{section}"' in html
    # The error sits right after the input (or the group) the API's `field` names ...
    shown = re.findall(r'data-error-for="([^"]+)"', html)
    assert len(shown) == 1
    assert field == shown[0] or field.startswith(shown[0] + ".") or field.startswith(shown[0] + "[")
    # ... and the input is marked invalid and described by it.
    element_id = "err-" + re.sub(r"[^A-Za-z0-9_]+", "-", shown[0]).strip("-")
    assert f'aria-invalid="true" aria-describedby="{element_id}' in html
    assert await version(client) == before


async def test_blank_rows_are_dropped_so_the_error_names_the_row_shown(
    client: TestClient[Any, Any], desk: Desk
) -> None:
    csrf = await sign_in(client, ADMIN_TOKEN)
    resp = await client.post(
        f"{SETTINGS_URL}/hours",
        data={
            "csrf": csrf,
            "service_hours.weekly.wed[0].start": "",
            "service_hours.weekly.wed[0].end": "",
            "service_hours.weekly.wed[3].start": "10:00",
            "service_hours.weekly.wed[3].end": "10:00",
        },
        headers=HTMX,
    )
    html = await resp.text()
    assert resp.status == 422
    assert 'data-error-for="service_hours.weekly.wed[0].end"' in html
    assert (
        'name="service_hours.weekly.wed[0].start" id="f-service_hours-weekly-wed-0-start"' in html
    )
    assert "wed[3]" not in html


async def test_saving_hours_stores_what_the_api_then_answers(
    client: TestClient[Any, Any], desk: Desk
) -> None:
    csrf = await sign_in(client, ADMIN_TOKEN)
    resp = await client.post(
        f"{SETTINGS_URL}/hours",
        data={
            "csrf": csrf,
            "service_hours.weekly.mon[0].start": "08:00",
            "service_hours.weekly.mon[0].end": "12:00",
            "service_hours.weekly.mon[1].start": "13:00",
            "service_hours.weekly.mon[1].end": "17:30",
            "service_hours.weekly.fri[0].start": "22:00",
            "service_hours.weekly.fri[0].end": "02:00",
            "service_hours.exceptions[0].date": "2026-12-24",
            "service_hours.exceptions[0].kind": "hours",
            "service_hours.exceptions[0].hours": "09:00-12:00, 13:00 – 15:00",
            "service_hours.exceptions[0].recurring": "on",
            "service_hours.exceptions[1].date": "2027-01-02",
            "service_hours.exceptions[1].end_date": "2027-01-05",
            "service_hours.exceptions[1].kind": "closed",
            "service_hours.exceptions[1].label": "inventory",
            "service_hours.holidays.country": "br",
            "service_hours.holidays.subdivision": "sp",
            "service_hours.holidays.open_on": "Tiradentes",
        },
        headers=HTMX,
    )
    assert resp.status == 200, await resp.text()
    assert "Saved." in await resp.text()
    hours = (await (await client.get(f"/api/v1/numbers/{N1}", headers=ADMIN)).json())[
        "service_hours"
    ]
    assert hours["weekly"] == {
        "mon": [{"start": "08:00", "end": "12:00"}, {"start": "13:00", "end": "17:30"}],
        "fri": [{"start": "22:00", "end": "02:00"}],
    }
    assert hours["exceptions"] == [
        {
            "date": "2026-12-24",
            "end_date": None,
            "closed": False,
            "hours": [{"start": "09:00", "end": "12:00"}, {"start": "13:00", "end": "15:00"}],
            "recurring": True,
            "label": None,
        },
        {
            "date": "2027-01-02",
            "end_date": "2027-01-05",
            "closed": True,
            "hours": None,
            "recurring": False,
            "label": "inventory",
        },
    ]
    assert hours["holidays"] == {"country": "BR", "subdivision": "SP", "open_on": ["Tiradentes"]}
    audit = await (await client.get(f"/api/v1/numbers/{N1}/audit", headers=ADMIN)).json()
    assert audit["items"][0]["actor"] == "@admin"
    assert audit["items"][0]["action"] == "patch"


async def test_always_open_switch_keeps_the_weekly_hours(
    client: TestClient[Any, Any], desk: Desk
) -> None:
    csrf = await sign_in(client, ADMIN_TOKEN)
    resp = await client.post(
        f"{SETTINGS_URL}/hours",
        data=hours_form(csrf, **{"service_hours.always_open": "on"}),
        allow_redirects=False,
    )
    assert resp.status == 303
    hours = (await (await client.get(f"/api/v1/numbers/{N1}", headers=ADMIN)).json())[
        "service_hours"
    ]
    assert hours["always_open"] is True
    assert hours["weekly"]["mon"] == [{"start": "09:00", "end": "18:00"}]


async def test_the_absence_switch_keeps_message_and_suggested_agent(
    client: TestClient[Any, Any], desk: Desk, clock: FixedClock
) -> None:
    clock.at = MON_20
    csrf = await sign_in(client, ADMIN_TOKEN)
    page = await (await client.get(SETTINGS_URL)).text()
    assert "We are closed. We are back sábado às 22:00." in page
    resp = await client.post(
        f"/console/numbers/{N1}/absence", data={"absence.enabled": "on", "csrf": csrf}, headers=HTMX
    )
    html = await resp.text()
    assert resp.status == 200
    # The section comes back with the switch on, and the next reply is swapped in with it.
    assert 'id="absence-switch" role="switch" checked' in html
    assert 'id="next-reply"' in html
    assert 'hx-swap-oob="true"' in html
    assert "Ana is on vacation." in html
    assert "If you prefer, talk to João" not in html  # language pt-BR
    assert "Se preferir, fale com João: https://wa.me/5511999990000" in html
    absence = (await (await client.get(f"/api/v1/numbers/{N1}", headers=ADMIN)).json())["absence"]
    assert absence["enabled"] is True
    assert absence["message"] == "Ana is on vacation."
    assert absence["suggested_agent"] == {"name": "João", "phone": "+5511999990000"}


async def test_absence_dates_are_read_in_the_number_s_zone(
    client: TestClient[Any, Any], desk: Desk
) -> None:
    csrf = await sign_in(client, ADMIN_TOKEN)
    resp = await client.post(
        f"{SETTINGS_URL}/absence",
        data={
            "csrf": csrf,
            "absence.enabled": "on",
            "absence.message": "Away",
            "absence.starts_at": "2026-12-01T08:00",
            "absence.ends_at": "2026-12-02T18:30",
        },
        allow_redirects=False,
    )
    assert resp.status == 303
    absence = (await (await client.get(f"/api/v1/numbers/{N1}", headers=ADMIN)).json())["absence"]
    assert absence["starts_at"] == "2026-12-01T08:00:00-03:00"
    assert absence["ends_at"] == "2026-12-02T18:30:00-03:00"
    assert absence["suggested_agent"] is None  # cleared with the blank fields
    page = await (await client.get(SETTINGS_URL)).text()
    assert 'value="2026-12-01T08:00"' in page


async def test_the_preview_shows_unsaved_changes_and_stores_nothing(
    client: TestClient[Any, Any], desk: Desk, clock: FixedClock
) -> None:
    clock.at = MON_20
    csrf = await sign_in(client, ADMIN_TOKEN)
    before = await version(client)
    resp = await client.post(
        f"/console/numbers/{N1}/preview/after_hours",
        data={
            "csrf": csrf,
            "after_hours.message": "Closed! Back {next_opening}.",
            "after_hours.notify_next_service_hour": "on",
        },
        headers=HTMX,
    )
    html = await resp.text()
    assert resp.status == 200
    assert "not saved" in html
    assert "Closed! Back sábado às 22:00." in html
    assert "Avise-me" in html  # the "notify me" button, in the number's language
    resp = await client.post(
        f"/console/numbers/{N1}/preview/after_hours",
        data={"csrf": csrf, "after_hours.message": "Back {later}"},
        headers=HTMX,
    )
    assert "Not valid yet" in await resp.text()
    assert await version(client) == before


async def test_in_service_hours_the_next_message_opens_a_ticket(
    client: TestClient[Any, Any], desk: Desk, clock: FixedClock
) -> None:
    clock.at = MON_10
    await sign_in(client, ADMIN_TOKEN)
    page = await (await client.get(SETTINGS_URL)).text()
    assert "Open now" in page
    assert 'data-outcome="ticket"' in page


async def test_an_agent_reads_the_settings_but_cannot_change_them(
    client: TestClient[Any, Any], desk: Desk
) -> None:
    csrf = await sign_in(client, desk.token("ana"))
    page = await (await client.get(SETTINGS_URL)).text()
    assert "administrators and managers of this number change them" in page
    assert "<fieldset disabled>" in page
    assert "Save service hours" not in page
    before = await version(client)
    resp = await client.post(
        f"/console/numbers/{N1}/absence", data={"absence.enabled": "on", "csrf": csrf}
    )
    assert resp.status == 403
    assert await version(client) == before


async def test_a_manager_changes_settings_and_the_audit_names_them(
    client: TestClient[Any, Any], desk: Desk
) -> None:
    csrf = await sign_in(client, desk.token("mara"))
    resp = await client.post(
        f"{SETTINGS_URL}/cooldown",
        data={"csrf": csrf, "auto_reply_cooldown_minutes": "60"},
        allow_redirects=False,
    )
    assert resp.status == 303
    assert resp.headers["Location"].endswith("?saved=cooldown#section-cooldown")
    audit = await (await client.get(f"/api/v1/numbers/{N1}/audit", headers=ADMIN)).json()
    assert audit["items"][0]["actor"] == "mara"
    assert audit["items"][0]["changes"] == {
        "auto_reply_cooldown_minutes": {"before": 1440, "after": 60}
    }
    resp = await client.post(
        f"/console/numbers/{N2}/settings/cooldown",
        data={"csrf": csrf, "auto_reply_cooldown_minutes": "60"},
    )
    assert resp.status == 403


async def test_an_admin_sets_up_a_number_from_the_console(
    client: TestClient[Any, Any], desk: Desk
) -> None:
    csrf = await sign_in(client, ADMIN_TOKEN)
    resp = await client.post(
        "/console/numbers",
        data={
            "csrf": csrf,
            "phone_number_id": "3000",
            "display_name": "Loja Norte",
            "timezone": "America/Manaus",
            "language": "es",
        },
        allow_redirects=False,
    )
    assert resp.status == 303
    assert resp.headers["Location"] == "/console/numbers/3000/settings?saved=created"
    number = await (await client.get("/api/v1/numbers/3000", headers=ADMIN)).json()
    assert number["display_name"] == "Loja Norte"
    assert number["timezone"] == "America/Manaus"
    assert number["language"] == "es"
    assert set(number["service_hours"]["weekly"]) == {"mon", "tue", "wed", "thu", "fri"}
    # The same id again would replace it: the form refuses instead.
    resp = await client.post(
        "/console/numbers",
        data={"csrf": csrf, "phone_number_id": "3000", "timezone": "UTC", "language": "en"},
    )
    assert resp.status == 422
    assert "already served" in await resp.text()
    resp = await client.post(
        "/console/numbers",
        data={"csrf": csrf, "phone_number_id": "4000", "timezone": "Nowhere/Land"},
    )
    assert resp.status == 422
    assert 'data-error-for="timezone"' in await resp.text()
    assert (await client.get("/api/v1/numbers/4000", headers=ADMIN)).status == 404


async def test_only_admins_add_numbers(client: TestClient[Any, Any], desk: Desk) -> None:
    csrf = await sign_in(client, desk.token("mara"))
    assert "Add a number" not in await (await client.get("/console")).text()
    resp = await client.post(
        "/console/numbers",
        data={"csrf": csrf, "phone_number_id": "3000", "timezone": "UTC"},
    )
    assert resp.status == 403


def test_api_example_is_the_fixture() -> None:
    # The round-trip test above relies on the richest documented example.
    assert SETTINGS["service_hours"]["weekly"]["sat"] == [{"start": "22:00", "end": "02:00"}]
