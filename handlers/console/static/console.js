/* deskline console: the little behaviour the server-rendered pages need.
 * - dialogs (the active-message form), keyboard-friendly, focus returned on close;
 * - adding and removing rows of the service-hours form;
 * - the live event stream (EventSource on the console's own endpoint, authenticated by the
 *   session cookie: no API token is ever visible here), which refreshes the lists via htmx;
 * - quick replies into the reply box; confirmation of deletes; errors in the status area.
 * No build step and no dependency besides htmx (loaded first). */
(function () {
  "use strict";

  var EVENT_TYPES = ["ticket.routed", "ticket.transferred", "ticket.closed",
    "after_hours.contact", "after_hours.callback",
    "message.in", "message.status", "transfer.requested", "transfer.answered"];
  var lastDialogTrigger = null;

  function flash(text, kind) {
    var box = document.getElementById("flash");
    if (!box) { return; }
    box.textContent = text;
    box.className = "flash show " + (kind || "");
    window.clearTimeout(box._timer);
    box._timer = window.setTimeout(function () { box.className = "flash"; }, 6000);
  }

  function focusFirst(root) {
    var target = root.querySelector("[aria-invalid='true']") ||
      root.querySelector("[autofocus]") ||
      root.querySelector("input:not([type=hidden]), select, textarea, button");
    if (target) { target.focus(); }
  }

  /* --- dialogs ----------------------------------------------------------------------- */
  document.addEventListener("click", function (event) {
    var opener = event.target.closest("[data-dialog]");
    if (opener) { lastDialogTrigger = opener; }
    var closer = event.target.closest("[data-close-dialog]");
    if (closer) {
      var dialog = closer.closest("dialog");
      if (dialog) { dialog.close(); }
    }
  });

  document.addEventListener("htmx:afterSettle", function (event) {
    var target = event.detail.target;
    if (!target) { return; }
    /* An outerHTML swap replaced the target: work on its successor. */
    if (!target.isConnected && target.id) { target = document.getElementById(target.id); }
    if (!target) { return; }
    var dialog = target.closest("dialog");
    if (dialog) {
      if (!dialog.open) { dialog.showModal(); }
      focusFirst(target);
      return;
    }
    if (target.querySelector && target.querySelector(".form-error")) { focusFirst(target); }
  });

  document.addEventListener("close", function (event) {
    if (event.target.tagName === "DIALOG" && lastDialogTrigger) {
      var id = lastDialogTrigger.closest("tr") && lastDialogTrigger.closest("tr").id;
      /* The row may have been replaced (message sent): focus its new button. */
      var again = id && document.querySelector("#" + CSS.escape(id) + " [data-dialog]");
      (again || lastDialogTrigger).focus();
    }
  }, true);

  /* --- rows of the service-hours form -------------------------------------------------- */
  function nextIndex(container) {
    var max = -1;
    container.querySelectorAll("[name]").forEach(function (input) {
      var match = /\[(\d+)\]/.exec(input.getAttribute("name"));
      if (match) { max = Math.max(max, parseInt(match[1], 10)); }
    });
    return max + 1;
  }

  document.addEventListener("click", function (event) {
    var add = event.target.closest("[data-add-row]");
    if (add) {
      var container = add.closest("[data-rows]");
      var template = container.querySelector("template[data-row-template]");
      var index = String(nextIndex(container));
      var html = template.innerHTML.replace(/__i__/g, index);
      add.insertAdjacentHTML("beforebegin", html);
      var closed = container.querySelector(".closed-day");
      if (closed) { closed.remove(); }
      var added = add.previousElementSibling;
      var first = added && added.querySelector("input, select");
      if (first) { first.focus(); }
      return;
    }
    var remove = event.target.closest("[data-remove-row]");
    if (remove) {
      var row = remove.closest(".interval, .exception");
      var rows = remove.closest("[data-rows]");
      if (row) { row.remove(); }
      var addButton = rows && rows.querySelector("[data-add-row]");
      if (addButton) { addButton.focus(); }
    }
  });

  /* --- quick replies and confirmations -------------------------------------------------- */
  document.addEventListener("change", function (event) {
    var select = event.target.closest("select[data-insert-into]");
    if (!select || !select.value) { return; }
    var box = document.getElementById(select.getAttribute("data-insert-into"));
    if (box) {
      var start = box.selectionStart || box.value.length;
      box.value = box.value.slice(0, start) + select.value + box.value.slice(box.selectionEnd || start);
      box.focus();
    }
    select.value = "";
  });

  document.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
  }, true);

  /* --- errors --------------------------------------------------------------------------- */
  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    flash((xhr && xhr.responseText) || "The request failed.", "error");
  });
  document.addEventListener("htmx:sendError", function () {
    flash("The server cannot be reached: check your connection.", "error");
  });

  /* --- live events ---------------------------------------------------------------------- */
  function startEvents() {
    var holder = document.querySelector("[data-events-url]");
    if (!holder || !window.EventSource) { return; }
    var state = document.getElementById("live-state");
    var source = new EventSource(holder.getAttribute("data-events-url"));
    var opened = false;
    function changed() { document.body.dispatchEvent(new CustomEvent("desk-event")); }
    source.addEventListener("ready", function () {
      if (state) { state.textContent = "Updates live."; }
      if (opened) { changed(); }  /* a reconnect: what was missed is reloaded */
      opened = true;
    });
    EVENT_TYPES.forEach(function (type) {
      source.addEventListener(type, function (message) {
        var data = {};
        try { data = JSON.parse(message.data); } catch (e) { data = {}; }
        /* Every event also goes to the page's own handlers (e.g. the open conversation). */
        document.dispatchEvent(new CustomEvent("desk-message", { detail: { type: type, data: data } }));
        if (type === "ticket.routed") {
          flash("New ticket: " + (data.name || data.wa_id || data.ticket_id || "a customer"));
        } else if (type === "after_hours.contact") {
          flash("After-hours contact: " + (data.name || data.wa_id || "a customer"));
        }
        changed();
      });
    });
    source.onerror = function () {
      if (state) { state.textContent = "Reconnecting…"; }
    };
    window.addEventListener("pagehide", function () { source.close(); });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", startEvents);
  } else {
    startEvents();
  }

  /* === Tickets page: the open conversation (issue 19) ================================== *
   * message.in for the open ticket: reload its conversation (#conversation, alone, so a
   * reply being typed stays); message.status: move that message's delivery tick (marks as
   * in templates/tickets/_conversation.html); transfer.*: reload the open ticket's detail.
   * On a phone, a ticket opened from the list is scrolled into view. */
  var TICKS = {
    accepted: ["\uD83D\uDD53", "Sending"], sent: ["\u2713", "Sent"],
    delivered: ["\u2713\u2713", "Delivered"], read: ["\u2713\u2713", "Read"],
    failed: ["\u26A0", "Not delivered"]
  };
  /* Meta's statuses can arrive out of order: a late "delivered" never undoes "read". */
  var RANK = { accepted: 0, sent: 1, delivered: 2, read: 3, failed: 4 };

  function openTicketId() {
    var list = document.getElementById("conversation");
    return list ? list.getAttribute("data-ticket-id") : null;
  }

  function setTick(item, status, error) {
    var tick = item.querySelector(".tick");
    var current = tick && tick.getAttribute("data-status");
    if (current && RANK[current] !== undefined && RANK[status] < RANK[current]) { return; }
    if (!tick) {
      var foot = item.querySelector(".msg-foot");
      if (!foot) { return; }
      tick = document.createElement("span");
      tick.className = "tick";
      foot.appendChild(document.createTextNode(" "));
      foot.appendChild(tick);
    }
    var mark = TICKS[status] || [status, status];
    tick.setAttribute("data-status", status);
    tick.title = status === "failed" && error ? error : mark[1];
    tick.textContent = "";
    var shown = document.createElement("span");
    shown.setAttribute("aria-hidden", "true");
    shown.textContent = mark[0];
    var spoken = document.createElement("span");
    spoken.className = "visually-hidden";
    spoken.textContent = mark[1];
    tick.appendChild(shown);
    tick.appendChild(spoken);
    if (status === "failed" && !item.querySelector(".msg-error")) {
      var note = document.createElement("span");
      note.className = "msg-error";
      note.textContent = "Not delivered" + (error ? ": " + error : "");
      item.appendChild(note);
    }
  }

  function reloadConversation(ticketId) {
    if (!window.htmx) { return; }
    window.htmx.ajax("GET", "/console/tickets/" + encodeURIComponent(ticketId) + "/conversation",
      { target: "#conversation", swap: "outerHTML" });
  }

  document.addEventListener("desk-message", function (event) {
    var type = event.detail.type;
    var data = event.detail.data || {};
    var open = openTicketId();
    if (!open || data.ticket_id !== open) {
      if (type === "transfer.requested") { flash("A colleague asks to take over one of your tickets."); }
      return;
    }
    if (type === "message.in") {
      reloadConversation(open);
    } else if (type === "message.status") {
      var items = document.querySelectorAll("#conversation [data-message-id]");
      for (var i = 0; i < items.length; i += 1) {
        if (items[i].getAttribute("data-message-id") === data.message_id) {
          setTick(items[i], data.status, data.error);
        }
      }
    } else if (type === "transfer.requested" || type === "transfer.answered") {
      if (type === "transfer.requested") { flash("A colleague asks to take over this ticket."); }
      if (window.htmx) {
        window.htmx.ajax("GET", "/console/tickets/" + encodeURIComponent(open),
          { target: "#ticket-detail", swap: "innerHTML" });
      }
    }
  });

  /* The newest message in view whenever the conversation is (re)drawn, and the open
   * ticket marked in the lists (which refresh without knowing which one is open). */
  function scrollConversation() {
    var list = document.getElementById("conversation");
    if (list) { list.scrollTop = list.scrollHeight; }
    var open = openTicketId();
    document.querySelectorAll(".ticket-list [data-ticket-id]").forEach(function (item) {
      if (item.getAttribute("data-ticket-id") === open) {
        item.setAttribute("aria-current", "true");
      } else {
        item.removeAttribute("aria-current");
      }
    });
  }
  document.addEventListener("htmx:afterSettle", function (event) {
    var target = event.detail.target;
    if (!target || !target.id) { scrollConversation(); return; }
    scrollConversation();
    var trigger = event.detail.requestConfig && event.detail.requestConfig.elt;
    if (target.id === "ticket-detail" && trigger && trigger.closest && trigger.closest(".ticket-link")) {
      /* Stacked layout (a phone): the conversation is below the lists, out of sight. */
      var box = target.getBoundingClientRect();
      if (box.top < 0 || box.top > window.innerHeight * 0.5) {
        target.scrollIntoView({ block: "start" });
      }
      target.focus({ preventScroll: true });
    }
  });
  /* A ticket's own address opened on a phone: the ticket, not the lists above it. */
  function showOpenTicket() {
    scrollConversation();
    var detail = document.getElementById("ticket-detail");
    if (detail && document.getElementById("conversation") &&
        detail.getBoundingClientRect().top > window.innerHeight * 0.5) {
      detail.scrollIntoView({ block: "start" });
    }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", showOpenTicket);
  } else {
    showOpenTicket();
  }
  /* === end of the Tickets page section ================================================ */
}());
