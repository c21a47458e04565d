// The five views. Each asks one GraphQL query for the filter and renders it; the figures keep
// their raw values in data-value, the words are for people.
import { graphql } from "./api.js";
import { dailyChart, sparkline } from "./charts.js";
import { count, day, duration, instant, percent, rating, SOURCE_NAMES, words } from "./format.js";
import { table } from "./table.js";

const METRICS = `fragment Figures on Metrics {
  conversations messages distinctContacts avgDurationSeconds avgFirstResponseSeconds avgRating
  avgFirstResponseBusinessSeconds slaHitPercent
}`;

// The summary's cards: the totals the seed's summary shows.
const CARDS = [
  ["conversations", "Conversations", count],
  ["messages", "Messages", count],
  ["distinctContacts", "Distinct contacts", count],
  ["avgDurationSeconds", "Average duration", duration],
  ["avgFirstResponseSeconds", "Average first response", duration],
  ["avgRating", "Average rating", rating],
  ["avgFirstResponseBusinessSeconds", "First response in office hours", duration],
  ["slaHitPercent", "Service-level hit rate", percent],
];

// The daily chart's choices: the five daily charts of the summary (the cards but the rating).
export const CHART_METRICS = CARDS.filter(([key]) => key !== "avgRating");

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "text") node.textContent = value;
    else if (name === "class") node.className = value;
    else node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}

function section(title, ...children) {
  const id = `h-${title.toLowerCase().replace(/[^a-z]+/g, "-")}`;
  return element("section", { class: "panel", "aria-labelledby": id }, element("h2", { id, text: title }), ...children);
}

function rangeLine(range) {
  return element("p", { class: "range", id: "range", "data-from": range.from, "data-to": range.to, "data-timezone": range.timezone,
    text: `${day(range.from)} – ${day(range.to)} (${range.timezone})` });
}

function cards(metrics, list = CARDS) {
  return element("div", { class: "cards", id: "cards" }, ...list.map(([key, label, format]) =>
    element("div", { class: "card", "data-metric": key, "data-value": metrics[key] === null ? "" : String(metrics[key]) },
      element("span", { class: "card-label", text: label }),
      element("span", { class: "card-value", text: format(metrics[key]) }))));
}

// A column of one Metrics figure of rows that carry `metrics` (weeks, agents, tags).
const figure = (key, label, format) => ({ key, label, numeric: true, value: (row) => row.metrics[key], format });

const metricColumns = () => [
  figure("conversations", "Conversations", count),
  figure("messages", "Messages", count),
  figure("distinctContacts", "Distinct contacts", count),
  figure("avgDurationSeconds", "Avg. duration", duration),
  figure("avgFirstResponseSeconds", "Avg. first response", duration),
  figure("avgRating", "Avg. rating", rating),
  figure("slaHitPercent", "SLA hit rate", percent),
];

// --- Summary ---------------------------------------------------------------------------------
const SUMMARY = `query Summary($filter: ReportFilter!) {
  summaryReport(filter: $filter) {
    range { from to timezone }
    totals { ...Figures }
    daily { start metrics { ...Figures } }
    weekly { start metrics { ...Figures } }
    bySource { source metrics { conversations messages } }
  }
}
${METRICS}`;

export async function summary(view, filter, context) {
  const { summaryReport: report } = await graphql(SUMMARY, { filter });
  const chosen = CHART_METRICS.find(([key]) => key === context.chartMetric) || CHART_METRICS[0];
  const select = element("select", { id: "chart-metric" }, ...CHART_METRICS.map(([key, label]) => {
    const option = element("option", { value: key, text: label });
    option.selected = key === chosen[0];
    return option;
  }));
  const chartBox = element("div", { class: "chart", id: "daily-chart" });
  const draw = (key) => {
    const [, label, format] = CHART_METRICS.find(([name]) => name === key);
    chartBox.dataset.metric = key;
    chartBox.dataset.values = report.daily.map((bucket) => bucket.metrics[key] ?? "").join(",");
    const drawn = dailyChart(chartBox, {
      days: report.daily.map((bucket) => bucket.start),
      values: report.daily.map((bucket) => bucket.metrics[key]),
      label, format,
    });
    context.onResize(drawn.resize);
  };
  select.addEventListener("change", () => {
    context.chartMetric = select.value;
    draw(select.value);
  });
  const weekly = table({
    id: "weekly",
    caption: "Weeks (Monday to Sunday; the first and last clipped to the range)",
    columns: [{ key: "start", label: "Week from", header: true, value: (row) => row.start, format: day }, ...metricColumns()],
    rows: report.weekly,
  });
  const total = report.totals.conversations;
  const bySource = table({
    id: "by-source",
    columns: [
      { key: "source", label: "Source", header: true, value: (row) => row.source, format: (value) => SOURCE_NAMES[value] },
      figure("conversations", "Conversations", count),
      { key: "share", label: "Share", numeric: true, value: (row) => (total ? (100 * row.metrics.conversations) / total : null), format: percent },
      figure("messages", "Messages", count),
    ],
    rows: report.bySource,
  });
  view.replaceChildren(
    element("h2", { class: "page-title", text: "Summary" }),
    rangeLine(report.range),
    cards(report.totals),
    section("Daily", element("div", { class: "chart-controls" },
      element("label", { for: "chart-metric", text: "Metric" }), select), chartBox),
    section("Weekly", weekly),
    section("Conversations by source", bySource),
  );
  draw(chosen[0]);
  return report.range;
}

// --- By agent, by tag ------------------------------------------------------------------------
const ROW_FIGURES = `conversations messages closedConversations avgDurationSeconds avgFirstResponseSeconds avgRating`;
const AGENTS = `query Agents($filter: ReportFilter!) {
  agentReport(filter: $filter) {
    range { from to timezone }
    rows { agent { id email name } sentMessages metrics { ${ROW_FIGURES} } daily { start metrics { conversations } } }
  }
}`;
const TAGS = `query Tags($filter: ReportFilter!) {
  tagReport(filter: $filter) {
    range { from to timezone }
    rows { tag { id name } metrics { ${ROW_FIGURES} } daily { start metrics { conversations } } }
  }
}`;

function rowColumns(first, extra = []) {
  return [
    first,
    figure("conversations", "Conversations", count),
    figure("messages", "Messages", count),
    ...extra,
    figure("closedConversations", "Closed", count),
    figure("avgDurationSeconds", "Avg. duration", duration),
    figure("avgFirstResponseSeconds", "Avg. first response", duration),
    figure("avgRating", "Avg. rating", rating),
    {
      key: "daily", label: "Conversations per day", sortable: false,
      value: (row) => row.daily.map((bucket) => bucket.metrics.conversations).join(","),
      render: (row) => sparkline(row.daily.map((bucket) => bucket.metrics.conversations)),
    },
  ];
}

function rowsPage(view, title, report, columns, empty) {
  const rows = report.rows.length
    ? table({ id: "rows", caption: `${title}: select a column to sort`, columns, rows: report.rows, sortable: true })
    : element("p", { class: "empty", text: empty });
  view.replaceChildren(element("h2", { class: "page-title", text: title }), rangeLine(report.range), section(title, rows));
  return report.range;
}

export async function agents(view, filter) {
  const { agentReport: report } = await graphql(AGENTS, { filter });
  const columns = rowColumns(
    { key: "agent", label: "Agent", header: true, value: (row) => row.agent.email,
      render: (row) => element("span", { title: row.agent.email, text: row.agent.name ? `${row.agent.name} (${row.agent.email})` : row.agent.email }) },
    [{ key: "sentMessages", label: "Sent by agent", numeric: true, value: (row) => row.sentMessages, format: count }],
  );
  return rowsPage(view, "By agent", report, columns, "No conversation in range is assigned to an agent.");
}

export async function tags(view, filter) {
  const { tagReport: report } = await graphql(TAGS, { filter });
  const columns = rowColumns({ key: "tag", label: "Tag", header: true, value: (row) => row.tag.name });
  return rowsPage(view, "By tag", report, columns, "No conversation in range carries a tag.");
}

// --- Details ---------------------------------------------------------------------------------
export const PAGE_SIZE = 50;
const DETAILS = `query Details($filter: ReportFilter!, $first: Int, $after: String) {
  conversationDetails(filter: $filter, first: $first, after: $after) {
    range { from to timezone }
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node {
      id startedAt contact { phone name } tags { name } agent { email name } status direction source
      messageCount durationSeconds firstResponseSeconds rating
    } }
  }
}`;

export async function details(view, filter) {
  const load = (after) => graphql(DETAILS, { filter, first: PAGE_SIZE, after }).then((data) => data.conversationDetails);
  const page = await load(null);
  const timezone = page.range.timezone;
  const columns = [
    { key: "startedAt", label: "Started", header: true, value: (row) => row.startedAt, format: (value) => instant(value, timezone) },
    { key: "phone", label: "Phone", value: (row) => row.contact.phone },
    { key: "name", label: "Name", value: (row) => row.contact.name },
    { key: "tags", label: "Tags", value: (row) => row.tags.map((tag) => tag.name).join(", ") },
    { key: "agent", label: "Agent", value: (row) => (row.agent ? row.agent.email : null) },
    { key: "status", label: "Status", value: (row) => row.status, format: words },
    { key: "direction", label: "Direction", value: (row) => row.direction, format: words },
    { key: "source", label: "Source", value: (row) => row.source, format: (value) => SOURCE_NAMES[value] },
    { key: "messageCount", label: "Messages", numeric: true, value: (row) => row.messageCount, format: count },
    { key: "durationSeconds", label: "Duration", numeric: true, value: (row) => row.durationSeconds, format: duration },
    { key: "firstResponseSeconds", label: "First response", numeric: true, value: (row) => row.firstResponseSeconds, format: duration },
    { key: "rating", label: "Rating", numeric: true, value: (row) => row.rating, format: count },
  ];
  const nodes = (connection) => connection.edges.map((edge) => edge.node);
  const list = table({ id: "conversations", caption: "Conversations, newest first", columns, rows: nodes(page) });
  const shown = element("p", { class: "range", id: "shown", role: "status" });
  const more = element("button", { type: "button", id: "load-more", text: `Load ${PAGE_SIZE} more` });
  let cursor = page.pageInfo;
  let loaded = page.edges.length;
  const update = () => {
    shown.textContent = `${count(loaded)} of ${count(page.totalCount)} conversations shown`;
    shown.dataset.loaded = String(loaded);
    shown.dataset.total = String(page.totalCount);
    more.hidden = !cursor.hasNextPage;
  };
  more.addEventListener("click", async () => {
    more.disabled = true;
    try {
      const next = await load(cursor.endCursor);
      list.table.appendRows(nodes(next));
      loaded += next.edges.length;
      cursor = next.pageInfo;
      update();
    } finally {
      more.disabled = false;
    }
  });
  update();
  view.replaceChildren(
    element("h2", { class: "page-title", text: "Details" }),
    rangeLine(page.range),
    element("p", { class: "count", id: "total", "data-value": String(page.totalCount), text: `${count(page.totalCount)} conversations` }),
    section("Conversations", list, shown, more),
  );
  return page.range;
}

// --- WhatsApp button -------------------------------------------------------------------------
const GROUPS = [
  ["byButton", "Button"], ["byReferrer", "Referrer"], ["byUtmCampaign", "UTM campaign"],
  ["byUtmMedium", "UTM medium"], ["byUtmSource", "UTM source"], ["byUtmTerm", "UTM term"],
  ["byUtmContent", "UTM content"],
];
const WIDGET = `query Widget($filter: ReportFilter!) {
  widgetReport(filter: $filter) {
    range { from to timezone }
    clicks conversations
    daily { start clicks conversations }
    ${GROUPS.map(([field]) => `${field} { key clicks conversations }`).join("\n    ")}
  }
}`;

export async function button(view, filter, context) {
  const { widgetReport: report } = await graphql(WIDGET, { filter });
  const chartBox = element("div", { class: "chart", id: "daily-chart", "data-metric": "clicks",
    "data-values": report.daily.map((bucket) => bucket.clicks).join(",") });
  const groups = GROUPS.map(([field, label]) => section(`By ${label.startsWith("UTM") ? label : label.toLowerCase()}`, table({
    id: field,
    sortable: true,
    columns: [
      { key: "key", label, header: true, value: (row) => row.key, format: (value) => value ?? "(none)" },
      { key: "clicks", label: "Clicks", numeric: true, value: (row) => row.clicks, format: count },
      { key: "conversations", label: "Conversations", numeric: true, value: (row) => row.conversations, format: count },
    ],
    rows: report[field],
  })));
  view.replaceChildren(
    element("h2", { class: "page-title", text: "WhatsApp button" }),
    rangeLine(report.range),
    cards(report, [["clicks", "Clicks", count], ["conversations", "Conversations", count]]),
    section("Clicks per day", chartBox),
    element("div", { class: "groups" }, ...groups),
  );
  const drawn = dailyChart(chartBox, {
    days: report.daily.map((bucket) => bucket.start),
    values: report.daily.map((bucket) => bucket.clicks),
    label: "Clicks", format: count,
  });
  context.onResize(drawn.resize);
  return report.range;
}

export const VIEW_PAGES = {
  summary: { title: "Summary", render: summary, report: "SUMMARY" },
  agents: { title: "By agent", render: agents, report: "AGENTS" },
  tags: { title: "By tag", render: tags, report: "TAGS" },
  details: { title: "Details", render: details, report: "DETAILS" },
  button: { title: "WhatsApp button", render: button, report: "WIDGET" },
};
