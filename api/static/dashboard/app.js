// The dashboard: a token pasted once per tab, a filter bar kept in the address, five views.
import { ApiError, graphql, token } from "./api.js";
import { fillOptions, PRESETS, readState, reportFilter, showState, stateOf, writeState } from "./filter.js";
import { VIEW_PAGES } from "./pages.js";

const started = performance.now();
const $ = (id) => document.getElementById(id);
const form = $("filters");
const view = $("view");
const context = { chartMetric: "conversations", range: null, resizers: [], onResize: (fn) => context.resizers.push(fn) };
let state = readState();
let rendering = 0;

// --- messages --------------------------------------------------------------------------------
function showMessage(text, kind = "error") {
  const box = $("message");
  box.textContent = text;
  box.dataset.kind = kind;
  box.hidden = !text;
}

function showError(error) {
  if (error instanceof ApiError) {
    showMessage(error.describe());
    $("message").dataset.code = error.code;
    if (error.signInAgain) signOut();
  } else {
    showMessage(`Unexpected error: ${error && error.message ? error.message : error}`);
    $("message").dataset.code = "CLIENT";
  }
}

// --- theme -----------------------------------------------------------------------------------
const THEMES = ["auto", "light", "dark"];
function applyTheme(theme) {
  if (theme === "auto") delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = theme;
  $("theme").textContent = `Theme: ${theme}`;
  $("theme").setAttribute("aria-label", `Theme: ${theme} (change)`);
  window.localStorage.setItem("wareports.theme", theme);
}
$("theme").addEventListener("click", () => {
  const current = window.localStorage.getItem("wareports.theme") || "auto";
  applyTheme(THEMES[(THEMES.indexOf(current) + 1) % THEMES.length]);
  if (token.get()) render();
});
applyTheme(window.localStorage.getItem("wareports.theme") || "auto");

// --- navigation ------------------------------------------------------------------------------
function drawNav() {
  const links = Object.entries(VIEW_PAGES).map(([name, page]) => {
    const link = document.createElement("a");
    link.href = writeState({ ...state, view: name });
    link.textContent = page.title;
    link.dataset.view = name;
    if (name === state.view) link.setAttribute("aria-current", "page");
    link.addEventListener("click", (event) => {
      if (event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
      event.preventDefault();
      go({ ...state, view: name });
    });
    return link;
  });
  $("nav").replaceChildren(...links);
}

function go(next, { push = true } = {}) {
  state = next;
  if (push) window.history.pushState(null, "", writeState(state));
  render();
}

window.addEventListener("popstate", () => {
  state = readState();
  render();
});

let resizeTimer = null;
window.addEventListener("resize", () => {
  window.clearTimeout(resizeTimer);
  resizeTimer = window.setTimeout(() => context.resizers.forEach((resize) => resize()), 150);
});

// --- the filter bar --------------------------------------------------------------------------
fillOptions(form.elements.preset, PRESETS);
if (typeof Intl.supportedValuesOf === "function") {
  $("zones").replaceChildren(...Intl.supportedValuesOf("timeZone").map((zone) => {
    const option = document.createElement("option");
    option.value = zone;
    return option;
  }));
}

async function loadChoices() {
  const data = await graphql("query Choices { tags { name } agents { email name } }");
  const tagOptions = data.tags.map((tag) => [tag.name, tag.name]);
  fillOptions(form.elements.contactTag, tagOptions);
  fillOptions(form.elements.conversationTag, tagOptions);
  fillOptions(form.elements.agent, data.agents.map((agent) => [agent.email, agent.name ? `${agent.name} (${agent.email})` : agent.email]));
}

form.addEventListener("change", (event) => {
  const next = stateOf(form, state.view);
  if (event.target.name === "preset" && next.preset === "CUSTOM" && context.range && !(next.from && next.to)) {
    next.from = context.range.from; // custom dates start from what is shown
    next.to = context.range.to;
  }
  if (next.preset === "CUSTOM" && !(next.from && next.to)) {
    showState(form, next);
    return; // wait for both dates
  }
  go(next);
});
form.addEventListener("submit", (event) => event.preventDefault());
$("clear-filters").addEventListener("click", () => go({ ...readState("?"), view: state.view }));

$("download").addEventListener("click", async () => {
  const status = $("download-status");
  const button = $("download");
  button.disabled = true;
  status.textContent = "Preparing the CSV…";
  try {
    const data = await graphql(
      "mutation Export($report: ReportKind!, $filter: ReportFilter!) { exportReportCsv(report: $report, filter: $filter) { url filename expiresAt } }",
      { report: VIEW_PAGES[state.view].report, filter: reportFilter(state) },
    );
    const file = data.exportReportCsv;
    const link = document.createElement("a");
    link.href = file.url;
    link.download = file.filename;
    link.textContent = file.filename;
    link.id = "download-link";
    status.replaceChildren("Downloading ", link);
    link.click();
  } catch (error) {
    status.textContent = "";
    showError(error);
  } finally {
    button.disabled = false;
  }
});

// --- rendering -------------------------------------------------------------------------------
async function render() {
  const mine = ++rendering;
  drawNav();
  showState(form, state);
  context.resizers = [];
  document.title = `${VIEW_PAGES[state.view].title} · wareports`;
  view.setAttribute("aria-busy", "true");
  view.dataset.view = state.view;
  delete view.dataset.ready;
  try {
    const target = document.createElement("div");
    const range = await VIEW_PAGES[state.view].render(target, reportFilter(state), context);
    if (mine !== rendering) return; // a newer filter won
    context.range = range;
    view.replaceChildren(...target.childNodes);
    context.resizers.forEach((resize) => resize());
    showMessage("");
    view.dataset.ready = String(rendering);
    if (!document.body.dataset.firstRenderMs) {
      document.body.dataset.firstRenderMs = String(Math.round(performance.now() - started));
    }
  } catch (error) {
    if (mine !== rendering) return;
    view.replaceChildren();
    showError(error);
    view.dataset.ready = String(rendering);
  } finally {
    if (mine === rendering) view.removeAttribute("aria-busy");
  }
}

// --- signing in and out ----------------------------------------------------------------------
function signOut() {
  token.clear(); // a refused token is of no use either
  $("sign-in").hidden = false;
  form.hidden = true;
  $("sign-out").hidden = true;
  view.replaceChildren();
  $("token").focus();
}

async function signedIn() {
  $("sign-in").hidden = true;
  form.hidden = false;
  $("sign-out").hidden = false;
  try {
    await loadChoices();
  } catch (error) {
    showError(error);
    return;
  }
  showMessage("");
  render();
}

$("sign-in-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const value = $("token").value.trim();
  if (!value) return;
  token.set(value);
  $("token").value = "";
  signedIn();
});
$("sign-out").addEventListener("click", () => {
  showMessage("");
  signOut();
});

if (token.get()) signedIn();
else signOut();
