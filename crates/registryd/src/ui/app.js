// Berth's pages: copy buttons (`data-copy`). Everything works without this script except
// copying, and the text to copy is shown beside each button.
"use strict";

function copied(button) {
  button.textContent = "Copied";
  setTimeout(() => { button.textContent = button.dataset.label; }, 1500);
}

function copyByHand(text, button) {
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.className = "offscreen";
  document.body.appendChild(area);
  area.select();
  try {
    if (document.execCommand("copy")) copied(button);
  } finally {
    area.remove();
  }
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const text = button.dataset.copy;
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(() => copied(button), () => copyByHand(text, button));
  } else {
    copyByHand(text, button);
  }
});
