// The filter bar's state lives in the address (so a view can be bookmarked and shared; never
// the token) and becomes the ReportFilter every report takes.
export const PRESETS = [
  ["TODAY", "Today"], ["YESTERDAY", "Yesterday"], ["LAST_7_DAYS", "Last 7 days"],
  ["LAST_30_DAYS", "Last 30 days"], ["LAST_90_DAYS", "Last 90 days"], ["LAST_365_DAYS", "Last 365 days"],
  ["THIS_WEEK", "This week"], ["LAST_WEEK", "Last week"], ["THIS_MONTH", "This month"],
  ["LAST_MONTH", "Last month"], ["THIS_QUARTER", "This quarter"], ["LAST_QUARTER", "Last quarter"],
  ["THIS_YEAR", "This year"], ["LAST_YEAR", "Last year"], ["CUSTOM", "Custom dates…"],
];
export const DEFAULT_PRESET = "LAST_30_DAYS";
export const VIEWS = ["summary", "agents", "tags", "details", "button"];
const LISTS = { contactTag: "contactTags", conversationTag: "conversationTags", agent: "agentEmails", source: "sources" };

export function readState(search = window.location.search) {
  const params = new URLSearchParams(search);
  const view = VIEWS.includes(params.get("view")) ? params.get("view") : "summary";
  const from = params.get("from") || "";
  const to = params.get("to") || "";
  let preset = params.get("preset") || (from && to ? "CUSTOM" : DEFAULT_PRESET);
  if (!PRESETS.some(([value]) => value === preset)) preset = DEFAULT_PRESET;
  const state = { view, preset, from, to, timezone: params.get("timezone") || "" };
  for (const name of Object.keys(LISTS)) state[name] = params.getAll(name);
  return state;
}

export function writeState(state) {
  const params = new URLSearchParams();
  if (state.view !== "summary") params.set("view", state.view);
  if (state.preset === "CUSTOM") {
    params.set("from", state.from);
    params.set("to", state.to);
  } else if (state.preset !== DEFAULT_PRESET) {
    params.set("preset", state.preset);
  }
  if (state.timezone) params.set("timezone", state.timezone);
  for (const name of Object.keys(LISTS)) for (const value of state[name]) params.append(name, value);
  const query = params.toString();
  return query ? `?${query}` : window.location.pathname;
}

// The GraphQL ReportFilter of a state.
export function reportFilter(state) {
  const filter = {};
  if (state.preset === "CUSTOM") {
    filter.from = state.from || null;
    filter.to = state.to || null;
  } else {
    filter.preset = state.preset;
  }
  if (state.timezone) filter.timezone = state.timezone;
  for (const [name, field] of Object.entries(LISTS)) if (state[name].length) filter[field] = state[name];
  return filter;
}

export function fillOptions(select, options) {
  const chosen = new Set(Array.from(select.selectedOptions, (option) => option.value));
  select.replaceChildren(...options.map(([value, label]) => {
    const option = document.createElement("option");
    option.value = value;
    option.textContent = label;
    option.selected = chosen.has(value);
    return option;
  }));
}

// Form controls <-> state.
export function showState(form, state) {
  form.elements.preset.value = state.preset;
  form.elements.from.value = state.from;
  form.elements.to.value = state.to;
  form.elements.timezone.value = state.timezone;
  for (const name of Object.keys(LISTS)) {
    const select = form.elements[name];
    const wanted = new Set(state[name]);
    for (const value of wanted) {
      if (!Array.from(select.options).some((option) => option.value === value)) {
        const option = document.createElement("option");
        option.value = option.textContent = value;
        select.append(option);
      }
    }
    for (const option of select.options) option.selected = wanted.has(option.value);
  }
  form.classList.toggle("custom", state.preset === "CUSTOM");
}

export function stateOf(form, view) {
  const state = {
    view,
    preset: form.elements.preset.value,
    from: form.elements.from.value,
    to: form.elements.to.value,
    timezone: form.elements.timezone.value.trim(),
  };
  for (const name of Object.keys(LISTS)) {
    state[name] = Array.from(form.elements[name].selectedOptions, (option) => option.value);
  }
  return state;
}
