// Gatehouse console: a little progressive enhancement. Every form works
// without this file; it adds live countdowns, a queue that updates itself
// from the server's event stream, and a JSON check before an amended
// payload is submitted.
"use strict";

function left(deadline) {
  const ms = Date.parse(deadline) - Date.now();
  if (Number.isNaN(ms)) return "";
  if (ms <= 0) return "expired";
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  return (h ? h + "h " : "") + (h || m ? m + "m " : "") + sec + "s left";
}

function tick() {
  for (const el of document.querySelectorAll(".countdown[data-deadline]")) {
    el.textContent = left(el.dataset.deadline);
  }
}

function liveQueue() {
  const table = document.getElementById("queue");
  if (!table || !window.EventSource) return;
  const body = document.getElementById("queue-rows");
  let pending = null;
  const refresh = () => {
    pending = null;
    const checked = new Set([...body.querySelectorAll("input[name=id]:checked")].map((c) => c.value));
    fetch(table.dataset.rows, { credentials: "same-origin" })
      .then((r) => (r.ok ? r.text() : Promise.reject(r.status)))
      .then((html) => {
        body.innerHTML = html;
        for (const c of body.querySelectorAll("input[name=id]")) c.checked = checked.has(c.value);
        tick();
      })
      .catch(() => {});
  };
  const events = new EventSource("/console/events");
  // Several events in a burst cause one refresh.
  events.addEventListener("decision", () => {
    if (!pending) pending = setTimeout(refresh, 150);
  });
}

function amendedPayloadCheck() {
  const form = document.getElementById("review-form");
  const area = document.getElementById("amended-payload");
  if (!form || !area) return;
  const error = document.getElementById("amended-error");
  form.addEventListener("submit", (e) => {
    const button = e.submitter;
    if (!button || button.value !== "approve_with_changes") return;
    try {
      const value = JSON.parse(area.value);
      if (value === null || typeof value !== "object" || Array.isArray(value)) {
        throw new Error("the payload must be a JSON object");
      }
      error.textContent = "";
    } catch (err) {
      e.preventDefault();
      error.textContent = "Not valid JSON: " + err.message;
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  tick();
  setInterval(tick, 1000);
  liveQueue();
  amendedPayloadCheck();
});
