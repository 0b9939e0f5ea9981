// A stacked bar chart drawn as SVG: one bar per day, one segment per series. Heights are the
// only floating-point use of money in the console (pixels); every label, tooltip and data
// attribute carries the exact value.

import { el, svg } from "./format.js";

const W = 760;
const H = 240;
const PAD = { left: 76, right: 12, top: 12, bottom: 28 };
export const PALETTE = ["#2f6fde", "#1f9d74", "#d9822b", "#9b59b6", "#c0392b", "#16a2b8",
  "#7f8c8d", "#e0b000", "#5d6d7e", "#e84393"];

// days: [{date, total: {value, text}, segments: [{series, value, text}]}]
// series: [{key, label, color}]; format(value) labels the y axis.
export function stackedBars({ days, series, format, label }) {
  const max = Math.max(0, ...days.map((d) => d.total.value));
  const top = niceCeiling(max);
  const innerW = W - PAD.left - PAD.right;
  const innerH = H - PAD.top - PAD.bottom;
  const slot = innerW / Math.max(days.length, 1);
  const barW = Math.max(2, slot * 0.72);
  const y = (v) => PAD.top + innerH - (top ? (v / top) * innerH : 0);
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img",
    "aria-label": label });
  for (let t = 0; t <= 4; t++) {
    const v = (top / 4) * t;
    root.append(svg("line", { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v), class: "grid" }),
      svg("text", { x: PAD.left - 8, y: y(v) + 4, class: "tick", "text-anchor": "end" }, format(v)));
  }
  const colors = Object.fromEntries(series.map((s) => [s.key, s.color]));
  const names = Object.fromEntries(series.map((s) => [s.key, s.label]));
  days.forEach((day, i) => {
    const x = PAD.left + i * slot + (slot - barW) / 2;
    const group = svg("g", { class: "bar", "data-date": day.date, "data-total": day.total.text });
    let base = 0;
    for (const seg of day.segments) {
      if (!seg.value) continue;
      const y0 = y(base + seg.value);
      const h = Math.max(y(base) - y0, 1);
      group.append(svg("rect", { x, y: y0, width: barW, height: h, fill: colors[seg.series],
        "data-series": seg.series, "data-value": seg.text },
      svg("title", {}, `${day.date} · ${names[seg.series]}: ${seg.text}`)));
      base += seg.value;
    }
    // An invisible full-height target, so an empty day still shows its total on hover.
    group.append(svg("rect", { x: PAD.left + i * slot, y: PAD.top, width: slot, height: innerH,
      class: "hit" }, svg("title", {}, `${day.date} · total ${day.total.text}`)));
    root.append(group);
    const every = Math.ceil(days.length / 8);
    // Every few days, and the last; a periodic label too close to the last one is skipped.
    if ((i % every === 0 && days.length - 1 - i >= every / 2) || i === days.length - 1) {
      root.append(svg("text", { x: PAD.left + i * slot + slot / 2, y: H - 8, class: "tick",
        "text-anchor": "middle" }, day.date.slice(5)));
    }
  });
  const legend = el("ul", { class: "legend" }, series.map((s) =>
    el("li", { "data-series": s.key }, el("span", { class: "swatch", style: { background: s.color } }), s.label)));
  return el("figure", { class: "chart-box" }, root, legend);
}

function niceCeiling(v) {
  if (v <= 0) return 1;
  const exp = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * exp >= v) return m * exp;
  return 10 * exp;
}
