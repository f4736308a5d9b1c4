// The accept link of a new invitation (team page, right after inviting): shown as a full
// address, selected, and copied by its button. The server renders it relative to the site.

const input = document.querySelector("[data-invite-link]");
const status = document.querySelector("[data-copy-status]");

if (input) {
  input.value = new URL(input.value, window.location.href).href;
  input.addEventListener("focus", () => input.select());
  input.focus();
  input.select();
}

for (const button of document.querySelectorAll("[data-copy]")) {
  button.addEventListener("click", async () => {
    const target = document.getElementById(button.dataset.copy);
    if (!target) return;
    try {
      await navigator.clipboard.writeText(target.value);
      if (status) status.textContent = "Link copied.";
    } catch {
      target.select();
      if (status) status.textContent = "Select the link and copy it (Ctrl+C or Cmd+C).";
    }
  });
}
