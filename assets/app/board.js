// The project board: drag and drop of cards (HTML5 drag events, so a mouse in Chromium and
// Playwright's drag_to both work), the "Move to…" dialog (the keyboard way: `m` opens it on
// the selected card), the quick add at the top of To do, and live updates.
//
// Every write answers the columns it touched, rendered by the server (partials/board_column);
// they replace the columns' head, cards and footer here, never the quick-add form, so typing
// is not lost. A move that lost a race answers 412 with the columns as they are: the card
// snaps to its true place and #board-message says why.

const board = document.getElementById("board");

if (board) {
  const project = board.dataset.board;
  const meta = document.querySelector("meta[name=csrf-token]");
  const headers = { "X-Board-Fragment": "1", "X-CSRF-Token": meta ? meta.content : "" };
  const message = document.getElementById("board-message");
  const dialog = document.getElementById("move-dialog");
  const moveForm = dialog && dialog.querySelector("[data-move-form]");
  const ALL = Array.from(board.querySelectorAll("[data-column]"), (c) => c.dataset.column);

  let messageTimer = 0;
  function say(text) {
    clearTimeout(messageTimer);
    message.textContent = text;
    message.classList.toggle("shown", text !== "");
    if (text) messageTimer = setTimeout(() => say(""), 8000);
  }

  function columnOf(el) {
    const column = el && el.closest("[data-column]");
    return column ? column.dataset.column : "";
  }

  function labelOf(status) {
    const head = document.getElementById(`column-${status}-title`);
    return head ? head.firstChild.textContent.trim() : status;
  }

  // --- swapping in columns the server rendered --------------------------------------------

  function swapColumns(html) {
    const template = document.createElement("template");
    template.innerHTML = html;
    const focused = document.activeElement;
    const focusCard = focused && focused.closest ? focused.closest("[data-card]") : null;
    const focusMove = focused && focused.matches && focused.matches("[data-move]");
    const selected = board.querySelector("[data-nav-item].selected");
    const swapped = [];
    for (const fresh of template.content.querySelectorAll("section[data-column]")) {
      const current = document.getElementById(fresh.id);
      if (!current) continue;
      for (const part of fresh.querySelectorAll("[data-part]")) {
        const old = current.querySelector(`[data-part="${part.dataset.part}"]`);
        if (old) old.replaceWith(part);
      }
      swapped.push(current);
    }
    // A card shown twice (its old column was not part of this answer): keep the fresh one and
    // refresh the column it was left behind in.
    const stale = new Set();
    for (const column of swapped) {
      for (const card of column.querySelectorAll("[data-card]")) {
        for (const twin of board.querySelectorAll(`[data-card="${card.dataset.card}"]`)) {
          if (twin !== card && !swapped.includes(twin.closest("[data-column]"))) {
            stale.add(columnOf(twin));
            twin.remove();
          }
        }
      }
    }
    if (stale.size) refresh(stale);
    if (selected) {
      const again = document.getElementById(selected.id);
      if (again) again.classList.add("selected");
    }
    if (focusCard && !document.body.contains(focused)) {
      const again = document.getElementById(focusCard.id);
      const target = again && (focusMove ? again.querySelector("[data-move]") : again.querySelector("a"));
      if (target) target.focus();
    }
    const note = template.content.querySelector("[data-board-message]");
    return note ? note.textContent.trim() : "";
  }

  // --- live updates ----------------------------------------------------------------------

  const wanted = new Set();
  let refreshTimer = 0;
  let busy = 0; // writes in flight, or a drag: refreshes wait for them
  let moves = 0; // moves begun: a refresh fetched across one shows the board from before it
  let dragging = null;

  function refresh(statuses) {
    for (const s of statuses) if (ALL.includes(s)) wanted.add(s);
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(flush, 80);
  }

  async function flush() {
    if (wanted.size === 0) return;
    if (busy > 0 || dragging) {
      refreshTimer = setTimeout(flush, 150);
      return;
    }
    const statuses = Array.from(wanted);
    wanted.clear();
    const began = moves;
    try {
      const response = await fetch(`/projects/${project}/columns?status=${statuses.join(",")}`, {
        headers, credentials: "same-origin",
      });
      if (!response.ok) return;
      const html = await response.text();
      if (busy > 0 || dragging || moves !== began) {
        // A drag or a move began meanwhile: do not pull the board from under it, nor show
        // the columns as they were before it.
        refresh(statuses);
        return;
      }
      swapColumns(html);
    } catch (e) {
      console.warn("tasker: the board could not refresh", e);
    }
  }

  function statusesIn(change) {
    const found = [];
    for (const c of change.data.changes || []) {
      if (c.field === "status") found.push(c.from, c.to);
    }
    return found.filter((s) => typeof s === "string");
  }

  document.addEventListener("tasker:change", (event) => {
    const change = event.detail || {};
    const data = change.data || {};
    let card = null;
    if (change.entity === "task") {
      card = document.getElementById(`card-${data.id}`);
      if (data.project_id !== project && !card) return;
      const statuses = statusesIn(change);
      if (card) statuses.push(columnOf(card));
      refresh(statuses.length ? statuses : ALL);
    } else if (change.entity === "comment" || change.entity === "attachment") {
      card = document.getElementById(`card-${data.task_id}`);
      if (card) refresh([columnOf(card)]);
    }
  });

  // --- moving a card -----------------------------------------------------------------------

  async function move(card, status, place, from) {
    const body = new URLSearchParams({
      task: card.dataset.card,
      status,
      after: place.after || "",
      before: place.before || "",
      position: place.position || "",
      version: card.dataset.version || "",
      from,
    });
    busy += 1;
    moves += 1;
    card.classList.add("saving");
    try {
      const response = await fetch(`/projects/${project}/move`, {
        method: "POST", headers, body, credentials: "same-origin",
      });
      if (response.ok || response.status === 409 || response.status === 412) {
        const note = swapColumns(await response.text());
        say(note || `Moved to ${labelOf(status)}.`);
        return;
      }
      say(response.status === 403 ? "You may not move this card." : "The card could not be moved.");
    } catch (e) {
      say("The card could not be moved: the server did not answer.");
    } finally {
      busy -= 1;
      card.classList.remove("saving");
    }
    // Show the columns as they are.
    refresh([from, status]);
  }

  // Drag and drop.
  let origin = null;
  let dropped = false;

  function listAt(target) {
    if (!(target instanceof Element)) return null;
    const list = target.closest("[data-cards]");
    if (list) return list;
    const column = target.closest("[data-column]");
    return column ? column.querySelector("[data-cards]") : null;
  }

  // The card the dragged one goes before, for a pointer at height y (null: the end).
  function cardBelow(list, y) {
    for (const card of list.querySelectorAll("[data-card]:not(.dragging)")) {
      const box = card.getBoundingClientRect();
      if (y < box.top + box.height / 2) return card;
    }
    return null;
  }

  board.addEventListener("dragstart", (event) => {
    const card = event.target instanceof Element && event.target.closest("[data-card].movable");
    if (!card) return;
    dragging = card;
    dropped = false;
    origin = { list: card.parentElement, next: card.nextElementSibling, status: columnOf(card) };
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", card.querySelector("a").href);
    requestAnimationFrame(() => card.classList.add("dragging"));
  });

  board.addEventListener("dragover", (event) => {
    if (!dragging) return;
    const list = listAt(event.target);
    if (!list) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "move";
    const below = cardBelow(list, event.clientY);
    if (below !== dragging.nextElementSibling || dragging.parentElement !== list) {
      list.insertBefore(dragging, below);
    }
  });

  board.addEventListener("drop", (event) => {
    if (!dragging) return;
    event.preventDefault();
    const list = listAt(event.target);
    if (list) list.insertBefore(dragging, cardBelow(list, event.clientY));
    dropped = true;
    finishDrag();
  });

  board.addEventListener("dragend", () => {
    if (dragging) finishDrag();
  });

  function finishDrag() {
    const card = dragging;
    dragging = null;
    card.classList.remove("dragging");
    if (!dropped) {
      origin.list.insertBefore(card, origin.next);
      return;
    }
    if (card.parentElement === origin.list && card.nextElementSibling === origin.next) return;
    const prev = card.previousElementSibling;
    const next = card.nextElementSibling;
    const status = columnOf(card);
    move(card, status, {
      after: prev && prev.dataset.card,
      before: next && next.dataset.card,
      position: prev || next ? "" : "top",
    }, origin.status);
  }

  // The "Move to…" dialog.
  let moving = null;

  function openMove(card) {
    if (!dialog || !card) return;
    moving = card;
    moveForm.elements.task.value = card.dataset.card;
    moveForm.elements.version.value = card.dataset.version;
    moveForm.elements.from.value = columnOf(card);
    moveForm.elements.status.value = columnOf(card);
    moveForm.elements.position.value = "top";
    dialog.querySelector("[data-move-name]").textContent =
      `“${card.querySelector(".card-title").textContent.trim()}”`;
    dialog.showModal();
    moveForm.elements.status.focus();
  }

  board.addEventListener("click", (event) => {
    const button = event.target instanceof Element && event.target.closest("[data-move]");
    if (button) openMove(button.closest("[data-card]"));
  });

  if (dialog) {
    dialog.querySelector("[data-move-cancel]").addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => {
      const card = moving && document.getElementById(moving.id);
      const button = card && card.querySelector("[data-move]");
      if (button) button.focus();
    });
    moveForm.addEventListener("submit", (event) => {
      event.preventDefault();
      const card = moving && document.getElementById(moving.id);
      if (!card) {
        dialog.close();
        return;
      }
      const status = moveForm.elements.status.value;
      const position = moveForm.elements.position.value;
      const from = columnOf(card);
      const list = board.querySelector(`[data-cards="${status}"]`);
      moving = card;
      dialog.close();
      if (list) list.insertBefore(card, position === "bottom" ? null : list.firstElementChild);
      const button = card.querySelector("[data-move]");
      if (button) button.focus();
      move(card, status, { position }, from);
    });
  }

  // The quick add.
  const quickAdd = board.querySelector("[data-quick-add]");
  if (quickAdd) {
    const input = quickAdd.elements.title;
    const error = quickAdd.querySelector("[data-quick-add-error]");
    const submit = quickAdd.querySelector("button[type=submit]");
    const fail = (text) => {
      error.textContent = text;
      input.setAttribute("aria-invalid", "true");
      input.focus();
    };
    quickAdd.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (submit.disabled) return;
      const title = input.value.trim();
      if (!title) {
        fail("Type a title first.");
        return;
      }
      submit.disabled = true;
      busy += 1;
      try {
        const response = await fetch(quickAdd.action, {
          method: "POST", headers, body: new URLSearchParams(new FormData(quickAdd)),
          credentials: "same-origin",
        });
        const html = await response.text();
        if (response.ok) {
          swapColumns(html);
          input.value = "";
          error.textContent = "";
          input.removeAttribute("aria-invalid");
          say(`Added “${title}”.`);
        } else {
          const template = document.createElement("template");
          template.innerHTML = html;
          const note = template.content.querySelector("[data-board-message]");
          fail(note ? note.textContent.trim() : "The task could not be added.");
        }
      } catch (e) {
        fail("The task could not be added: the server did not answer.");
      } finally {
        busy -= 1;
        submit.disabled = false;
        input.focus();
      }
    });
  }
}
