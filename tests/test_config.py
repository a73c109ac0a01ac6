"""bot.domain.config: NumberConfig validation (field paths), defaults, JSON Merge Patch, audit
diffs."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.config import (
    EXAMPLE,
    INTERACTIVE_BODY_MAX,
    NEXT_OPENING,
    NEXT_OPENING_RENDERED_MAX,
    TEXT_BODY_MAX,
    Absence,
    FieldChange,
    changed_fields,
    merge_patch,
    new_document,
    parse_config,
    patched_document,
    rendered_length,
)
from bot.domain.errors import InvalidInputError

MINIMAL: dict[str, Any] = {"timezone": "America/Sao_Paulo", "service_hours": {}}


def _example() -> dict[str, Any]:
    return copy.deepcopy(dict(EXAMPLE))


# --- merge patch: RFC 7386 -----------------------------------------------------------------

# RFC 7386, Appendix A (the cases whose target and patch are objects).
RFC_CASES = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "result"), RFC_CASES)
def test_merge_patch_follows_rfc_7386(target: Any, patch: Any, result: Any) -> None:
    assert merge_patch(target, patch) == result


json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=5)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=10,
)
json_objects = st.dictionaries(st.text(max_size=3), json_values, max_size=4)


@given(target=json_objects, patch=json_objects)
def test_merge_patch_is_idempotent_and_pure(target: dict[str, Any], patch: dict[str, Any]) -> None:
    target_before, patch_before = copy.deepcopy(target), copy.deepcopy(patch)
    once = merge_patch(target, patch)
    assert merge_patch(once, patch) == once
    assert (target, patch) == (target_before, patch_before)


@given(target=json_objects, patch=json_objects)
def test_merge_patch_touches_only_the_keys_it_names(
    target: dict[str, Any], patch: dict[str, Any]
) -> None:
    merged = merge_patch(target, patch)
    for key in target.keys() - patch.keys():
        assert merged[key] == target[key]
    for key, value in patch.items():
        if value is None:
            assert key not in merged
        elif not isinstance(value, dict):
            assert merged[key] == value  # scalars and arrays replace whole


# --- validation ----------------------------------------------------------------------------


def _field_of(document: Any) -> str | None:
    with pytest.raises(InvalidInputError) as info:
        parse_config(document)
    return info.value.field


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"timezone": "Europe/Nowhere"}, "timezone"),
        ({"timezone": "/etc/localtime"}, "timezone"),
        ({"language": "pt"}, "language"),
        ({"service_hours": {"weekly": {"mon": [{"start": "9:00", "end": "12:00"}]}}},
         "service_hours.weekly.mon[0].start"),
        ({"service_hours": {"weekly": {"mon": [{"start": "09:00", "end": "24:01"}]}}},
         "service_hours.weekly.mon[0].end"),
        ({"service_hours": {"weekly": {"tue": [{"start": "09:00", "end": "12:00"},
                                               {"start": "11:00", "end": "13:00"}]}}},
         "service_hours.weekly.tue[1]"),
        ({"service_hours": {"exceptions": [{"date": "2026-01-01", "end_date": "2025-12-31",
                                            "closed": True}]}},
         "service_hours.exceptions[0].end_date"),
        ({"after_hours": {"notify_next_service_hour": "true"}},
         "after_hours.notify_next_service_hour"),
        ({"absence": {"suggested_agent": {"name": "João", "phone": "5511999990000"}}},
         "absence.suggested_agent.phone"),
        ({"absence": {"suggested_agent": {"name": "João"}}}, "absence.suggested_agent.phone"),
        ({"absence": {"ends_at": "2026-01-01"}}, "absence.ends_at"),
        ({"auto_reply_cooldown_minutes": 43201}, "auto_reply_cooldown_minutes"),
        ({"auto_reply_cooldown_minutes": 1.5}, "auto_reply_cooldown_minutes"),
        ({"absense": {"enabled": True}}, "absense"),
    ],
)  # fmt: skip
def test_invalid_settings_name_the_full_field_path(patch: dict[str, Any], field: str) -> None:
    assert _field_of(merge_patch(MINIMAL, patch)) == field


def test_message_is_prefixed_with_the_field() -> None:
    with pytest.raises(InvalidInputError) as info:
        parse_config(merge_patch(MINIMAL, {"language": "fr"}))
    assert info.value.message.startswith("language: ")
    assert info.value.code == "invalid"


def test_a_body_that_is_not_an_object_names_no_field() -> None:
    with pytest.raises(InvalidInputError) as info:
        new_document(["timezone"])
    assert info.value.field is None


def test_null_means_absent_everywhere() -> None:
    config = parse_config(
        {
            **MINIMAL,
            "display_name": None,
            "language": None,
            "after_hours": {"message": None, "notify_next_service_hour": None},
            "absence": None,
            "auto_reply_cooldown_minutes": None,
        }
    )
    assert config == parse_config(MINIMAL)


def test_api_md_example_is_valid() -> None:
    config = parse_config(_example())
    assert config.absence.suggested_agent is not None
    assert config.absence.suggested_agent.phone == "+5511999990000"
    assert config.zone.key == "America/Sao_Paulo"


@pytest.mark.parametrize(
    ("language", "word"), [("pt-BR", "Voltamos"), ("en", "We are back"), ("es", "Volvemos")]
)
def test_default_messages_are_in_the_numbers_language(language: str, word: str) -> None:
    config = parse_config({**MINIMAL, "language": language})
    assert word in config.after_hours.message
    assert NEXT_OPENING in config.after_hours.message
    assert config.absence.message


def test_interactive_limit_counts_the_rendered_placeholder() -> None:
    room = INTERACTIVE_BODY_MAX - NEXT_OPENING_RENDERED_MAX
    fits = "x" * room + NEXT_OPENING
    assert rendered_length(fits) == INTERACTIVE_BODY_MAX
    ok = {"after_hours": {"message": fits, "notify_next_service_hour": True}}
    parse_config(merge_patch(MINIMAL, ok))
    too_long = {"after_hours": {"message": "x" + fits, "notify_next_service_hour": True}}
    assert _field_of(merge_patch(MINIMAL, too_long)) == "after_hours.message"
    # Without the button it is a plain text message, whose limit is 4096.
    as_text = {"after_hours": {"message": "x" + fits, "notify_next_service_hour": False}}
    parse_config(merge_patch(MINIMAL, as_text))
    huge = {"after_hours": {"message": "x" * (TEXT_BODY_MAX + 1)}}
    assert _field_of(merge_patch(MINIMAL, huge)) == "after_hours.message"


@pytest.mark.parametrize("message", ["back {next_openings}", "{0}", "a } b", "{{next_opening}}"])
def test_only_the_next_opening_placeholder_is_allowed(message: str) -> None:
    assert _field_of(merge_patch(MINIMAL, {"after_hours": {"message": message}})) == (
        "after_hours.message"
    )


# --- patches of settings ---------------------------------------------------------------------


def test_enabling_absence_keeps_its_message_and_suggested_agent() -> None:
    stored, _ = new_document(_example())
    merged, config = patched_document(stored, {"absence": {"enabled": True}})
    assert config.absence.enabled is True
    assert config.absence.message == "Ana is on vacation."
    assert config.absence.suggested_agent is not None
    assert merged["after_hours"] == stored["after_hours"]


def test_patch_that_breaks_the_settings_names_the_field_from_the_top() -> None:
    stored, _ = new_document(_example())
    with pytest.raises(InvalidInputError) as info:
        patched_document(stored, {"service_hours": {"weekly": {"sat": [{"start": "25:00"}]}}})
    assert info.value.field == "service_hours.weekly.sat[0].start"


def test_a_patch_must_be_an_object() -> None:
    with pytest.raises(InvalidInputError):
        patched_document({}, [{"op": "replace"}])


# --- absence and audit -------------------------------------------------------------------------


def test_absence_applies_between_its_dates_only_when_enabled() -> None:
    start = datetime(2026, 1, 10, tzinfo=UTC)
    absence = Absence(enabled=True, starts_at=start, ends_at=start + timedelta(days=2))
    assert not absence.active_at(start - timedelta(seconds=1))
    assert absence.active_at(start)
    assert not absence.active_at(start + timedelta(days=2))
    assert not absence.model_copy(update={"enabled": False}).active_at(start)


def test_changed_fields_lists_only_what_changed() -> None:
    before = parse_config(_example())
    after = parse_config(merge_patch(_example(), {"absence": {"enabled": True}, "language": "en"}))
    assert changed_fields(before, after) == {
        "absence.enabled": FieldChange(before=False, after=True),
        "language": FieldChange(before="pt-BR", after="en"),
    }
    assert changed_fields(before, before) == {}
    created = changed_fields(None, before)
    assert created["timezone"] == FieldChange(before=None, after="America/Sao_Paulo")
    assert created["service_hours.weekly.mon"].after == EXAMPLE["service_hours"]["weekly"]["mon"]
