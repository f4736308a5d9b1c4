// The live connection of a signed-in page: one WebSocket to /api/ws, authenticated by the
// session cookie (no token in the URL), first opened from the change-log position the page
// was rendered at (body[data-since]: after every frame of that seq), then reopened after the
// `cursor` of the last message handled, so nothing between render and connect, or between two
// frames of one seq, is lost and nothing is seen twice. Every message becomes a DOM event on
// `document`:
//   tasker:change        detail = {seq, cursor, entity, action, data}
//   tasker:notification  detail = {seq, cursor, notification}
// Regions marked data-live-src="URL" refetch themselves (outerHTML, by id) when a change
// arrives whose entity is listed in data-live-entities (default "task"). On `reset` (we were
// away longer than the server keeps history) the page reloads to show the truth.

const body = document.body;
const status = document.getElementById("live-status");
const since = Number(body.dataset.since || 0);
// The position of the last message handled (its `cursor`); none yet: `since`.
let after = null;
let delay = 500;
let shownReconnecting = false;
// Set once the page is being left (a link, a form post): the socket closing then is expected.
let leaving = false;
addEventListener("beforeunload", () => { leaving = true; });
addEventListener("pagehide", () => { leaving = true; });

function setStatus(text) {
  if (!status) return;
  status.textContent = text;
  status.classList.toggle("shown", text !== "");
}

function emit(name, detail) {
  document.dispatchEvent(new CustomEvent(name, { detail }));
}

function bumpBell(by) {
  const count = document.getElementById("unread-count");
  if (!count) return;
  const value = Math.max(0, Number(count.textContent || 0) + by);
  count.textContent = String(value);
  count.classList.toggle("zero", value === 0);
}

const pending = new Map();
function refresh(region) {
  const url = region.dataset.liveSrc;
  if (!url || !region.id || pending.has(region.id)) return;
  // Several changes in a burst cause one refetch.
  pending.set(region.id, setTimeout(() => {
    pending.delete(region.id);
    if (!window.htmx) return;
    window.htmx.ajax("GET", url, { target: "#" + region.id, select: "#" + region.id, swap: "outerHTML" });
  }, 150));
}

function onChange(change) {
  for (const region of document.querySelectorAll("[data-live-src]")) {
    const entities = (region.dataset.liveEntities || "task").split(",");
    if (entities.includes(change.entity)) refresh(region);
  }
}

function handle(message) {
  switch (message.type) {
    case "change":
      emit("tasker:change", message);
      onChange(message);
      break;
    case "notification":
      bumpBell(1);
      emit("tasker:notification", message);
      break;
    case "reset":
      setStatus("Catching up…");
      location.reload();
      break;
  }
  // Handled: a reconnection resumes right after it.
  if (typeof message.cursor === "string") after = message.cursor;
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const position = after === null ? `since=${since}` : `after=${encodeURIComponent(after)}`;
  const socket = new WebSocket(`${scheme}://${location.host}/api/ws?${position}`);
  socket.addEventListener("open", () => {
    delay = 500;
    if (shownReconnecting) {
      shownReconnecting = false;
      setStatus("");
    }
    body.dataset.live = "connected";
  });
  socket.addEventListener("message", (event) => {
    try {
      handle(JSON.parse(event.data));
    } catch (e) {
      console.warn("tasker: unreadable live message", e);
    }
  });
  socket.addEventListener("close", (event) => {
    body.dataset.live = "disconnected";
    if (leaving) {
      // Still here a moment later (the "navigation" was a download): carry on as usual.
      leaving = false;
      setTimeout(connect, 2000);
      return;
    }
    if (event.code === 4001) {
      // Signed out or revoked elsewhere.
      location.assign("/signin");
      return;
    }
    shownReconnecting = true;
    setStatus("Reconnecting…");
    setTimeout(connect, delay);
    delay = Math.min(delay * 2, 10000);
  });
}

if (body.dataset.since !== undefined) connect();
