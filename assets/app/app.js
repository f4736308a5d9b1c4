// Keyboard shortcuts and small behaviours of every page. Pages add their own with
// data attributes; nothing here is inline in the HTML (the CSP forbids it).
//   ?            the shortcuts dialog          /   search
//   c            create ([data-create])        j/k next/previous [data-nav-item]
//   e            edit ([data-edit])            m   move ([data-move] of the selected item)
//   g then h     My work                       Esc closes menus and dialogs

const dialog = document.getElementById("shortcuts");

function typing(target) {
  return target instanceof HTMLElement &&
    (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
}

function openShortcuts() {
  if (dialog && !dialog.open) dialog.showModal();
}

function items() {
  return Array.from(document.querySelectorAll("[data-nav-item]"))
    .filter((el) => el.offsetParent !== null);
}

function selected() {
  return document.querySelector("[data-nav-item].selected");
}

function select(step) {
  const list = items();
  if (list.length === 0) return;
  const current = list.indexOf(selected());
  const next = list[Math.max(0, Math.min(list.length - 1, current < 0 ? 0 : current + step))];
  for (const el of list) el.classList.remove("selected");
  next.classList.add("selected");
  const focusable = next.matches("a, button, [tabindex]") ? next : next.querySelector("a, button, [tabindex]");
  (focusable || next).focus();
  next.scrollIntoView({ block: "nearest" });
}

function within(scope, selector) {
  return (scope && scope.querySelector(selector)) || document.querySelector(selector);
}

let pendingG = false;

document.addEventListener("keydown", (event) => {
  if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.key === "Escape") {
    for (const menu of document.querySelectorAll("details[open]")) menu.open = false;
    return;
  }
  if (typing(event.target)) return;
  if (pendingG) {
    pendingG = false;
    if (event.key === "h") { location.assign("/"); event.preventDefault(); }
    return;
  }
  const scope = selected();
  switch (event.key) {
    case "?":
      openShortcuts();
      break;
    case "/": {
      const search = document.querySelector("[data-search-input]");
      if (search) search.focus(); else location.assign("/search");
      break;
    }
    case "c": {
      const create = document.querySelector("[data-create]");
      if (!create) return;
      if (create.matches("input, textarea")) create.focus(); else create.click();
      break;
    }
    case "j": select(1); break;
    case "k": select(-1); break;
    case "e": {
      const edit = within(scope, "[data-edit]");
      if (!edit) return;
      edit.click();
      break;
    }
    case "m": {
      const move = within(scope, "[data-move]");
      if (!move) return;
      if (move.matches("select")) move.focus(); else move.click();
      break;
    }
    case "g":
      pendingG = true;
      setTimeout(() => { pendingG = false; }, 1000);
      break;
    default:
      return;
  }
  event.preventDefault();
});

for (const button of document.querySelectorAll("[data-open-shortcuts]")) {
  button.addEventListener("click", openShortcuts);
}

// A confirmation for destructive buttons: data-confirm="Delete this task?"
document.addEventListener("submit", (event) => {
  const form = event.target;
  const submitter = event.submitter;
  const message = (submitter && submitter.dataset.confirm) || (form instanceof HTMLElement && form.dataset.confirm);
  if (message && !window.confirm(message)) event.preventDefault();
});
