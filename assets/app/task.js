// The task page: edit in place (the `e` shortcut clicks [data-edit]), Markdown previews,
// comments added without a reload, uploads with a progress bar, and live updates that never
// clobber what the person is typing: while the edit form holds unsaved changes, a change by
// someone else only shows a notice (saving then shows the conflict panel).

const page = document.getElementById("task-page");
const taskId = page ? page.dataset.taskId : null;
const me = document.body.dataset.user;
const csrf = () => (document.querySelector("meta[name=csrf-token]") || {}).content || "";
const byId = (id) => document.getElementById(id);

// --- editing -------------------------------------------------------------------------------

function dirty(form) {
  if (!form) return false;
  if (form.hasAttribute("data-unsaved")) return true;
  for (const el of form.elements) {
    if (el.type === "hidden" || el.type === "submit" || el.type === "button") continue;
    if (el.type === "checkbox" || el.type === "radio") {
      if (el.checked !== el.defaultChecked) return true;
    } else if (el.tagName === "SELECT") {
      for (const option of el.options) if (option.selected !== option.defaultSelected) return true;
    } else if ("defaultValue" in el && el.value !== el.defaultValue) {
      return true;
    }
  }
  return false;
}

function editing() {
  const form = byId("task-edit");
  return Boolean(form && !form.hidden);
}

function setEditing(on) {
  const form = byId("task-edit");
  if (!form) return;
  form.hidden = !on;
  const view = byId("task-view");
  if (view) view.hidden = on;
  const edit = document.querySelector("#task-main [data-edit]");
  if (edit) edit.hidden = on;
  if (on) byId("f-title").focus();
  else if (edit) edit.focus();
}

document.addEventListener("click", (event) => {
  const target = event.target instanceof Element ? event.target : null;
  if (!target) return;
  const edit = target.closest("[data-edit]");
  if (edit && byId("task-edit")) {
    event.preventDefault();
    setEditing(true);
    return;
  }
  const cancel = target.closest("[data-cancel-edit]");
  if (cancel) {
    const form = byId("task-edit");
    // A form refilled by the server (after a refused save) goes back by reloading.
    if (form && !form.hasAttribute("data-unsaved")) {
      event.preventDefault();
      form.reset();
      setEditing(false);
    }
    return;
  }
  const clear = target.closest("[data-clear]");
  if (clear) {
    const input = byId(clear.dataset.clear);
    if (input) { input.value = ""; input.focus(); }
    return;
  }
  const preview = target.closest("[data-preview]");
  if (preview) {
    const box = byId(preview.dataset.preview);
    if (box) box.hidden = false;
  }
});

// --- comments --------------------------------------------------------------------------------

document.addEventListener("htmx:afterRequest", (event) => {
  const form = event.detail.elt;
  if (!(form instanceof HTMLFormElement) || !form.matches("[data-comment-form]")) return;
  const error = byId("comment-error");
  if (event.detail.successful) {
    form.reset();
    if (error) error.replaceChildren();
    const preview = byId("comment-preview");
    if (preview) { preview.hidden = true; preview.replaceChildren(); }
    for (const empty of document.querySelectorAll(".no-comments")) empty.remove();
  } else if (error) {
    const text = new DOMParser().parseFromString(event.detail.xhr.responseText || "", "text/html")
      .body.textContent.trim();
    const p = document.createElement("p");
    p.className = "field-error";
    p.textContent = text || "The comment was not saved. Try again.";
    error.replaceChildren(p);
  }
});

// --- uploads ---------------------------------------------------------------------------------

function errorText(xhr) {
  const doc = new DOMParser().parseFromString(xhr.responseText || "", "text/html");
  const message = doc.querySelector("main p");
  return message ? message.textContent.trim() : `the server answered ${xhr.status}`;
}

function replaceRegion(html, id) {
  const doc = new DOMParser().parseFromString(html, "text/html");
  const fresh = doc.getElementById(id);
  const current = byId(id);
  if (!fresh || !current) return;
  const node = document.importNode(fresh, true);
  current.replaceWith(node);
  if (window.htmx) window.htmx.process(node);
}

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.matches("[data-upload]")) return;
  event.preventDefault();
  const input = form.querySelector("input[type=file]");
  const status = form.querySelector("[data-upload-status]");
  const bar = form.querySelector("progress");
  const button = form.querySelector("button[type=submit]");
  if (!input.files.length) {
    status.textContent = "Choose a file first.";
    input.focus();
    return;
  }
  const body = new FormData();
  for (const file of input.files) body.append("file", file, file.name);
  const names = Array.from(input.files, (f) => f.name).join(", ");
  const xhr = new XMLHttpRequest();
  xhr.open("POST", form.action);
  xhr.setRequestHeader("X-CSRF-Token", csrf());
  xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
  bar.hidden = false;
  bar.value = 0;
  button.disabled = true;
  status.textContent = `Uploading ${names}…`;
  xhr.upload.addEventListener("progress", (e) => {
    if (!e.lengthComputable) return;
    bar.value = Math.round((e.loaded / e.total) * 100);
  });
  const done = (message) => {
    button.disabled = false;
    bar.hidden = true;
    status.textContent = message;
  };
  xhr.addEventListener("load", () => {
    if (xhr.status >= 200 && xhr.status < 300) {
      bar.value = 100;
      replaceRegion(xhr.responseText, "attachments");
      form.reset();
      done(`Uploaded ${names}.`);
    } else {
      done(`Upload failed: ${errorText(xhr)}`);
    }
  });
  xhr.addEventListener("error", () => done("Upload failed: the connection was lost. Try again."));
  xhr.send(body);
});

// --- live ------------------------------------------------------------------------------------

function notice(text) {
  const box = byId("task-notice");
  if (!box) return;
  box.querySelector("[data-notice-text]").textContent = text;
  box.hidden = false;
}

const pending = new Map();
function refresh(id, after) {
  if (!page || pending.has(id)) return;
  pending.set(id, setTimeout(() => {
    pending.delete(id);
    if (!window.htmx || !byId(id)) return;
    window.htmx.ajax("GET", page.dataset.taskUrl, { target: "#" + id, select: "#" + id, swap: "outerHTML" })
      .then(() => { if (after) after(); });
  }, 150));
}

function commentsBeingEdited() {
  return Array.from(document.querySelectorAll("#comments details[open] form")).some(dirty);
}

document.addEventListener("tasker:change", (event) => {
  if (!taskId) return;
  const change = event.detail || {};
  const data = change.data || {};
  const others = data.actor_id === me ? "in another window" : "by someone else";
  if (change.entity === "task" && data.id === taskId) {
    if (change.action === "deleted") {
      notice(`This task was deleted ${others}.`);
      return;
    }
    refresh("activity");
    if (editing() && dirty(byId("task-edit"))) {
      notice(`This task was changed ${others}. Your edits are kept; saving will show what changed.`);
      return;
    }
    const reopen = editing();
    refresh("task-main", () => {
      const title = document.querySelector("#task-title");
      if (title) document.title = `${title.textContent} · tasker`;
      if (reopen) setEditing(true);
    });
  } else if (change.entity === "comment" && data.task_id === taskId) {
    if (!commentsBeingEdited()) refresh("comments");
  } else if (change.entity === "attachment" && data.task_id === taskId) {
    refresh("attachments");
  }
});
