// Charts: uPlot for the daily figures, a small SVG line for each row's sparkline.
import uPlot from "/assets/vendor/uplot-1.6.32/uPlot.esm.js";

const SVG = "http://www.w3.org/2000/svg";

function color(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#128c7e";
}

// Epoch seconds of a calendar date at UTC midnight; the axis is drawn in UTC so a day stays itself.
export function daySeconds(isoDate) {
  const [y, m, d] = isoDate.split("-").map(Number);
  return Date.UTC(y, m - 1, d) / 1000;
}

// A daily line chart in `container`; `format` renders a value for the axis and the legend.
export function dailyChart(container, { days, values, label, format }) {
  container.replaceChildren();
  const width = Math.max(280, container.clientWidth || 600);
  const options = {
    width,
    height: 260,
    tzDate: (seconds) => uPlot.tzDate(new Date(seconds * 1000), "Etc/UTC"),
    scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] } },
    axes: [
      { stroke: color("--muted"), grid: { stroke: color("--grid") }, ticks: { stroke: color("--grid") } },
      {
        stroke: color("--muted"), grid: { stroke: color("--grid") }, ticks: { stroke: color("--grid") },
        size: 70, values: (_u, ticks) => ticks.map((tick) => format(tick)),
      },
    ],
    series: [
      { value: (_u, seconds) => (seconds === null ? "" : new Date(seconds * 1000).toISOString().slice(0, 10)) },
      {
        label, stroke: color("--accent"), width: 2, fill: color("--accent-fill"),
        points: { show: days.length <= 45 }, spanGaps: false,
        value: (_u, value) => (value === null ? "—" : format(value)),
      },
    ],
  };
  const chart = new uPlot(options, [days.map(daySeconds), values], container);
  const resize = () => chart.setSize({ width: Math.max(280, container.clientWidth), height: 260 });
  return { chart, resize };
}

// A row's daily values as a line (aria-hidden: the row's figures are in its cells).
export function sparkline(values, { width = 120, height = 28 } = {}) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("width", String(width));
  svg.setAttribute("height", String(height));
  svg.setAttribute("class", "sparkline");
  svg.setAttribute("aria-hidden", "true");
  const max = Math.max(1, ...values);
  const step = values.length > 1 ? width / (values.length - 1) : 0;
  const points = values.map((value, index) => {
    const x = (index * step).toFixed(1);
    const y = (height - 2 - ((height - 4) * value) / max).toFixed(1);
    return `${x},${y}`;
  });
  const line = document.createElementNS(SVG, "polyline");
  line.setAttribute("points", points.join(" "));
  line.setAttribute("fill", "none");
  line.setAttribute("class", "sparkline-line");
  svg.append(line);
  svg.dataset.values = values.join(",");
  return svg;
}
