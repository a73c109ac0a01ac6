"""The web console at `/console`: server-rendered pages over the same code paths as the API.

Pages are Jinja2 templates (aiohttp-jinja2); htmx (vendored under static/, no build step)
swaps the fragments forms answer with and follows the live event stream. Who may see and do
what is decided by the API's own rules (`bot.domain.auth`, `bot.domain.tickets`); every write
is the API's use case in `bot.services` (never `handlers.api`), so a 422 names the same field
in both.

To add a page: write its handler (read the user with `handlers.console.context.user_of`), add
its route in `setup_console`. The middleware (handlers/console/session.py) already requires a
session for every `/console` path, and a CSRF token on every form post.
"""

from __future__ import annotations

from aiohttp import web

from handlers.console.render import STATIC_DIR, STATIC_ROUTE, setup_templates
from handlers.console.session import PREFIX, console_auth, security_headers


def setup_console(app: web.Application) -> None:
    """Register the console's templates, middleware, static files and routes on `app`.

    Called from `handlers.setup_routes`, after the API (its middleware runs inside the API's).
    """
    from handlers.console import (
        after_hours,
        contact_view,
        contacts,
        events,
        history,
        monitoring,
        numbers,
        quick_replies,
        tickets,
    )
    from handlers.console import session as sign_in

    setup_templates(app)
    app.middlewares.append(console_auth)
    app.on_response_prepare.append(security_headers)
    p = PREFIX
    r = app.router
    r.add_static(f"{p}/static", STATIC_DIR, name=STATIC_ROUTE, append_version=True)
    r.add_get(f"{p}/sign-in", sign_in.sign_in_page, name="console_sign_in")
    r.add_post(f"{p}/sign-in", sign_in.sign_in)
    r.add_post(f"{p}/sign-out", sign_in.sign_out)
    r.add_get(p, numbers.home, name="console_home")
    r.add_get(f"{p}/", numbers.home)
    r.add_get(f"{p}/select", numbers.select_number)
    r.add_post(f"{p}/numbers", numbers.create_number)
    n = f"{p}/numbers/{{phone_number_id}}"
    r.add_get(f"{n}/settings", numbers.settings_page)
    r.add_post(f"{n}/settings/{{section}}", numbers.save_section)
    r.add_post(f"{n}/absence", numbers.absence_switch)
    r.add_post(f"{n}/preview/{{section}}", numbers.preview)
    r.add_get(f"{n}/after-hours", after_hours.page)
    r.add_get(f"{n}/after-hours/{{id}}/message", after_hours.message_form)
    r.add_post(f"{n}/after-hours/{{id}}/message", after_hours.send_message)
    r.add_get(f"{n}/tickets", tickets.page)
    r.add_get(f"{n}/tickets/lists", tickets.lists)
    r.add_get(f"{n}/tickets/{{ticket_id}}", tickets.page)  # after `lists`: a deep link
    r.add_get(f"{n}/events", events.stream)
    r.add_get(f"{n}/history", history.page)
    r.add_get(f"{p}/tickets/{{ticket_id}}/transcript.pdf", history.transcript)
    r.add_get(f"{n}/monitoring", monitoring.page)
    r.add_get(f"{n}/monitoring/figures", monitoring.figures)
    r.add_get(f"{n}/monitoring/chart", monitoring.chart)
    r.add_get(f"{p}/tickets/{{ticket_id}}", tickets.detail)
    r.add_post(f"{p}/tickets/{{ticket_id}}/reply", tickets.reply)
    r.add_post(f"{p}/tickets/{{ticket_id}}/typing", tickets.typing)
    r.add_post(f"{p}/tickets/{{ticket_id}}/close", tickets.close)
    r.add_post(f"{p}/tickets/{{ticket_id}}/transfer", tickets.transfer)
    r.add_get(f"{p}/tickets/{{ticket_id}}/conversation", tickets.conversation_part)
    r.add_post(f"{p}/tickets/{{ticket_id}}/notes", tickets.add_note)
    r.add_post(f"{p}/tickets/{{ticket_id}}/transfer-request", tickets.request_transfer)
    r.add_post(
        f"{p}/tickets/{{ticket_id}}/transfer-request/{{request_id}}", tickets.answer_transfer
    )
    r.add_post(f"{p}/status", tickets.set_status)
    r.add_get(f"{p}/contacts", contacts.page)
    c = f"{p}/contacts/{{number}}/{{wa_id}}"
    r.add_get(c, contact_view.page)
    r.add_get(f"{c}/message", contact_view.message_form)
    r.add_post(f"{c}/message", contact_view.send_message)
    r.add_get(f"{p}/quick-replies", quick_replies.page)
    r.add_post(f"{p}/quick-replies/categories", quick_replies.create_category)
    r.add_post(
        f"{p}/quick-replies/categories/{{category_id}}/delete", quick_replies.delete_category
    )
    r.add_post(f"{p}/quick-replies/categories/{{category_id}}/replies", quick_replies.create_reply)
    r.add_post(
        f"{p}/quick-replies/categories/{{category_id}}/replies/{{reply_id}}/delete",
        quick_replies.delete_reply,
    )
