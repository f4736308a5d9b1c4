// The notification inbox: while the newest page is open (#inbox[data-live-inbox]), a
// notification pushed by the live connection (live.js emits `tasker:notification` and bumps
// the bell) refetches the list, so the new entry appears at the top. Several in a burst cause
// one refetch.

let timer = null;

function refresh() {
  timer = null;
  const inbox = document.getElementById("inbox");
  const url = inbox && inbox.dataset.liveInbox;
  if (!url || !window.htmx) return;
  window.htmx.ajax("GET", url, { target: "#inbox", select: "#inbox", swap: "outerHTML" });
}

document.addEventListener("tasker:notification", () => {
  if (timer === null) timer = setTimeout(refresh, 150);
});
