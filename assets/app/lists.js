// Task lists: a clean URL for the filter form, "select all", and checked rows that survive
// a live refresh of the results. Everything works without this file; it only smooths.

// The filter form leaves out empty fields, so a view's URL says only what it filters by.
for (const form of document.querySelectorAll("form[data-clean-get]")) {
  form.addEventListener("submit", () => {
    const emptied = [];
    for (const field of form.elements) {
      if (field.name && !field.disabled && field.type !== "checkbox" && field.value === "") {
        field.disabled = true;
        emptied.push(field);
      }
    }
    // The form's data is taken when the submit event is over: re-enable right after.
    setTimeout(() => { for (const field of emptied) field.disabled = false; }, 0);
  });
}

function boxes(scope) {
  return Array.from((scope || document).querySelectorAll("input[type=checkbox][name=task]"));
}

// "Select all" toggles every row's box (shown only with script).
for (const all of document.querySelectorAll("[data-select-all]")) {
  const label = all.closest("label");
  if (label) label.hidden = false;
  all.addEventListener("change", () => {
    for (const box of boxes()) box.checked = all.checked;
  });
}

// A live refresh replaces the rows: keep what was checked and which row was selected.
let kept = null;
document.addEventListener("htmx:beforeSwap", (event) => {
  const target = event.detail.target;
  const form = event.detail.requestConfig && event.detail.requestConfig.elt;
  // A bulk change that was refused (422: nothing selected, no status) still shows its note.
  if (form instanceof HTMLElement && form.matches("[data-bulk-form]") && event.detail.xhr.status === 422) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
  if (!target || target.id !== "list-results") return;
  const selected = target.querySelector("[data-nav-item].selected");
  kept = {
    checked: new Set(boxes(target).filter((b) => b.checked).map((b) => b.value.split(":")[0])),
    selected: selected ? selected.id : null,
  };
});
document.addEventListener("htmx:afterSettle", () => {
  if (!kept) return;
  const region = document.getElementById("list-results");
  if (region) {
    for (const box of boxes(region)) {
      if (kept.checked.has(box.value.split(":")[0])) box.checked = true;
    }
    if (kept.selected) {
      const row = document.getElementById(kept.selected);
      if (row) row.classList.add("selected");
    }
  }
  kept = null;
});

// After a bulk change the rows come back unchecked: so does "select all".
document.addEventListener("htmx:afterRequest", (event) => {
  const form = event.detail.elt;
  if (form instanceof HTMLElement && form.matches("[data-bulk-form]")) {
    for (const all of document.querySelectorAll("[data-select-all]")) all.checked = false;
  }
});
