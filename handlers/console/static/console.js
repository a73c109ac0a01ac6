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
    "after_hours.contact", "after_hours.callback"];
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
}());
