// Tab-title alerts and opt-in desktop notifications for queue arrivals.
// While the tab is hidden or unfocused, each new card on /escalations counts; the title
// alternates between "(N) New escalation — Escalation Desk" and the page's own title
// until the tab is focused again.
(function () {
  if (window.__escalationDeskLive) return;
  window.__escalationDeskLive = true;

  var ALERT = " New escalation — Escalation Desk";
  var known = null;
  var path = null;
  var unseen = 0;
  var timer = null;
  var ownTitle = null;
  var showingAlert = false;

  function cards() {
    return Array.prototype.slice.call(document.querySelectorAll("article[data-handoff-id]"));
  }

  function away() {
    return document.hidden || !document.hasFocus();
  }

  function stopAlert() {
    if (timer) window.clearInterval(timer);
    timer = null;
    unseen = 0;
    if (showingAlert && ownTitle !== null) document.title = ownTitle;
    showingAlert = false;
    ownTitle = null;
  }

  function startAlert() {
    if (ownTitle === null) ownTitle = document.title;
    var show = function () {
      showingAlert = !showingAlert;
      document.title = showingAlert ? "(" + unseen + ")" + ALERT : ownTitle;
    };
    if (!timer) {
      showingAlert = false;
      show();
      timer = window.setInterval(show, 1000);
    } else if (showingAlert) {
      document.title = "(" + unseen + ")" + ALERT;
    }
  }

  function notify(card) {
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    try {
      new Notification("New escalation", { body: card.getAttribute("aria-label") || "", tag: card.dataset.handoffId });
    } catch (e) {
      /* Some browsers only allow notifications from a service worker. */
    }
  }

  function scan() {
    var here = window.location.pathname.replace(/\/$/, "");
    if (here !== "/escalations") {
      known = null;
      path = here;
      return;
    }
    var now = cards();
    if (known === null || path !== here) {
      known = new Set(now.map(function (c) { return c.dataset.handoffId; }));
      path = here;
      return;
    }
    var fresh = now.filter(function (c) { return !known.has(c.dataset.handoffId); });
    fresh.forEach(function (c) { known.add(c.dataset.handoffId); });
    if (fresh.length && away()) {
      unseen += fresh.length;
      fresh.forEach(notify);
      startAlert();
    }
  }

  function start() {
    new MutationObserver(scan).observe(document.body, { childList: true, subtree: true });
    window.addEventListener("focus", stopAlert);
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden && document.hasFocus()) stopAlert();
    });
    scan();
  }

  if (document.body) start();
  else document.addEventListener("DOMContentLoaded", start);
})();
