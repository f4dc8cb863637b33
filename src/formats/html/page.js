"use strict";
(function () {
  const data = JSON.parse(document.getElementById("chronik-data").textContent);
  const svgNS = "http://www.w3.org/2000/svg";
  const slider = document.getElementById("date");
  const label = document.getElementById("date-label");
  const tbody = document.querySelector("#state tbody");
  const removedBox = document.getElementById("removed");
  const eventLine = document.getElementById("event");
  const steps = data.steps;

  const subtitle = document.getElementById("subtitle");
  if (data.events.length === 0) {
    subtitle.textContent = "No events.";
  } else {
    const first = data.events[0].human, last = data.events[data.events.length - 1].human;
    subtitle.textContent = data.events.length + (data.events.length === 1 ? " event" : " events") +
      ", " + first + " to " + last + (data.known_at ? ", as the log stood at " + data.known_at : "") + ".";
  }

  // The state at step i, rebuilt from the changes of each step.
  let current = -1;
  let facts = new Map();
  function stateAt(i) {
    if (i < current) { current = -1; facts = new Map(); }
    for (let s = current + 1; s <= i; s++) {
      for (const key of steps[s].removed) facts.delete(key);
      for (const fact of steps[s].added) facts.set(fact.key, fact);
    }
    current = i;
    return facts;
  }

  function cell(tr, text) {
    const td = document.createElement("td");
    td.textContent = text;
    tr.appendChild(td);
    return td;
  }

  function show(i) {
    if (steps.length === 0) return;
    const step = steps[i];
    const before = new Map(stateAt(Math.max(i - 1, 0)));
    const now = stateAt(i);
    slider.value = String(i);
    label.textContent = "State at " + step.human;
    slider.setAttribute("aria-valuetext", step.human);
    const titles = data.events.filter((e) => e.step === i).map((e) => e.title);
    eventLine.textContent = titles.length ? step.human + ": " + titles.join("; ") : "";
    const changed = new Set(step.added.map((f) => f.key));
    const rows = Array.from(now.values()).sort((a, b) =>
      a.entity < b.entity ? -1 : a.entity > b.entity ? 1 :
      a.attr < b.attr ? -1 : a.attr > b.attr ? 1 :
      a.value < b.value ? -1 : a.value > b.value ? 1 : 0);
    tbody.textContent = "";
    for (const fact of rows) {
      const tr = document.createElement("tr");
      tr.dataset.entity = fact.entity;
      tr.dataset.attr = fact.attr;
      tr.dataset.value = JSON.stringify(fact.value_json);
      tr.dataset.event = fact.event;
      tr.dataset.uncertain = String(fact.uncertain);
      if (changed.has(fact.key)) tr.classList.add("changed");
      if (fact.uncertain) tr.classList.add("uncertain");
      cell(tr, fact.entity);
      cell(tr, fact.attr);
      cell(tr, fact.value);
      const since = cell(tr, fact.since);
      if (fact.uncertain) {
        const badge = document.createElement("span");
        badge.className = "badge";
        badge.textContent = "?";
        badge.title = "uncertain: may or may not hold at " + step.human;
        badge.setAttribute("aria-label", "uncertain");
        since.appendChild(badge);
      }
      cell(tr, fact.event);
      tbody.appendChild(tr);
    }
    removedBox.textContent = "";
    const gone = i === 0 ? [] : step.removed.filter((k) => !now.has(k) && before.has(k));
    if (gone.length) {
      const p = document.createElement("p");
      p.textContent = "No longer holds since the previous date:";
      const ul = document.createElement("ul");
      for (const key of gone) {
        const f = before.get(key);
        const li = document.createElement("li");
        li.textContent = f.entity + "." + f.attr + " = " + f.value;
        ul.appendChild(li);
      }
      removedBox.append(p, ul);
    }
    for (const mark of document.querySelectorAll("#timeline .mark")) {
      mark.classList.toggle("later", Number(mark.dataset.step) > i);
    }
    const cursor = document.querySelector("#timeline .cursor");
    if (cursor) {
      const x = xOf(step.end);
      cursor.setAttribute("x1", x);
      cursor.setAttribute("x2", x);
    }
  }

  // The timeline: one lane per entity (at most 30; the rest share one).
  const width = 1000, left = 150, right = 20, top = 28, laneHeight = 24;
  const lanes = [];
  const laneOf = new Map();
  for (const e of data.events) {
    for (const entity of e.entities.length ? e.entities : ["(no entity)"]) {
      if (!laneOf.has(entity)) {
        if (lanes.length < 30) { laneOf.set(entity, lanes.length); lanes.push(entity); }
        else { if (lanes.length === 30) lanes.push("(other entities)"); laneOf.set(entity, 30); }
      }
    }
  }
  let first = Infinity, last = -Infinity;
  for (const e of data.events) { first = Math.min(first, e.start); last = Math.max(last, e.end); }
  if (!data.events.length) { first = 0; last = 1; }
  // A little room on both sides, so that the first and last marks and their ticks show whole.
  const t0 = first - (last - first) * 0.01, t1 = last + (last - first) * 0.05;
  const span = Math.max(t1 - t0, 1);
  function xOf(t) { return left + (t - t0) / span * (width - left - right); }

  const svg = document.getElementById("timeline");
  const height = top + Math.max(lanes.length, 1) * laneHeight + 10;
  svg.setAttribute("viewBox", "0 0 " + width + " " + height);
  function el(name, attrs, parent) {
    const node = document.createElementNS(svgNS, name);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    (parent || svg).appendChild(node);
    return node;
  }
  // The start of year y in seconds (Date.UTC would read years 0-99 as 1900-1999).
  function yearStart(y) { const d = new Date(0); d.setUTCFullYear(y, 0, 1); return d.getTime() / 1000; }
  const y0 = new Date(t0 * 1000).getUTCFullYear(), y1 = new Date(t1 * 1000).getUTCFullYear();
  const every = Math.max(1, Math.ceil((y1 - y0 + 1) / 12));
  for (let y = y0; data.events.length && y <= y1 + 1; y += every) {
    const t = yearStart(y);
    if (t < t0 || t > t1) continue;
    el("line", { class: "tick-line", x1: xOf(t), x2: xOf(t), y1: top - 6, y2: height - 6 });
    el("text", { class: "tick", x: xOf(t) + 2, y: top - 10 }).textContent = String(y);
  }
  lanes.forEach((lane, n) => {
    const y = top + n * laneHeight + laneHeight / 2;
    el("line", { class: "lane-line", x1: left, x2: width - right, y1: y, y2: y });
    el("text", { class: "lane-label", x: 8, y: y + 4 }).textContent = lane;
  });
  for (const e of data.events) {
    const seen = new Set();
    for (const entity of e.entities.length ? e.entities : ["(no entity)"]) {
      const n = laneOf.get(entity);
      if (seen.has(n)) continue;
      seen.add(n);
      const x = xOf(e.start), w = Math.max(xOf(e.end) - x, 4);
      const y = top + n * laneHeight + 5;
      const mark = el("rect", {
        class: "mark" + (e.precision === "year" || e.precision === "month" ? " coarse" : ""),
        x: x, y: y, width: w, height: laneHeight - 10, rx: 3,
        tabindex: "0", role: "button",
        "aria-label": e.human + ": " + e.title + " (" + lanes[n] + ")",
      });
      mark.dataset.step = String(e.step);
      el("title", {}, mark).textContent = e.human + ": " + e.title;
      const go = () => { show(e.step); slider.focus(); };
      mark.addEventListener("click", go);
      mark.addEventListener("keydown", (ev) => {
        if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); go(); }
      });
    }
  }
  el("line", { class: "cursor", x1: left, x2: left, y1: top - 6, y2: height - 6 });

  slider.max = String(Math.max(steps.length - 1, 0));
  slider.addEventListener("input", () => show(Number(slider.value)));
  document.getElementById("previous").addEventListener("click", () => show(Math.max(Number(slider.value) - 1, 0)));
  document.getElementById("next").addEventListener("click", () => show(Math.min(Number(slider.value) + 1, steps.length - 1)));
  show(Math.max(steps.length - 1, 0));
})();
