// Tables: every cell keeps its raw value in data-value (what the figures are, whatever their
// words); sortable tables sort by it from their column headers.
import { DASH } from "./format.js";

function cell(tag, column, row) {
  const element = document.createElement(tag);
  const value = column.value(row);
  if (column.render) {
    const rendered = column.render(row);
    if (rendered instanceof Node) element.append(rendered);
    else element.textContent = rendered;
  } else {
    element.textContent = column.format ? column.format(value) : value ?? DASH;
  }
  if (value !== undefined && !(value instanceof Node)) element.dataset.value = value === null ? "" : String(value);
  element.dataset.column = column.key;
  if (column.numeric) element.className = "num";
  return element;
}

function compare(a, b) {
  if (a === b) return 0;
  if (a === null || a === undefined) return 1; // nothing to show goes last either way
  if (b === null || b === undefined) return -1;
  if (typeof a === "number" && typeof b === "number") return a - b;
  return String(a).localeCompare(String(b), undefined, { sensitivity: "base", numeric: true });
}

// A <table> of `rows`; `sortable` makes each header a button that sorts by that column.
export function table({ columns, rows, caption, sortable = false, id = null }) {
  const element = document.createElement("table");
  if (id) element.id = id;
  if (caption) {
    const title = document.createElement("caption");
    title.textContent = caption;
    element.append(title);
  }
  const head = document.createElement("thead");
  const headRow = document.createElement("tr");
  const body = document.createElement("tbody");
  let sorted = { key: null, ascending: true };

  const line = (row) => {
    const tr = document.createElement("tr");
    for (const column of columns) tr.append(cell(column.header ? "th" : "td", column, row));
    return tr;
  };
  const fill = (list) => body.replaceChildren(...list.map(line));

  for (const column of columns) {
    const th = document.createElement("th");
    th.scope = "col";
    th.dataset.column = column.key;
    if (column.numeric) th.className = "num";
    if (sortable && column.sortable !== false) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = column.label;
      button.addEventListener("click", () => {
        const ascending = sorted.key === column.key ? !sorted.ascending : !column.numeric;
        sorted = { key: column.key, ascending };
        for (const other of headRow.children) other.removeAttribute("aria-sort");
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        const list = [...rows].sort((a, b) => {
          const order = compare(column.value(a), column.value(b));
          const nullish = (v) => v === null || v === undefined;
          if (nullish(column.value(a)) || nullish(column.value(b))) return order;
          return ascending ? order : -order;
        });
        fill(list);
      });
      th.append(button);
    } else {
      th.textContent = column.label;
    }
    headRow.append(th);
  }
  head.append(headRow);
  element.append(head, body);
  fill(rows);
  element.appendRows = (more) => {
    rows = rows.concat(more);
    body.append(...more.map(line));
  };
  const wrapper = document.createElement("div");
  wrapper.className = "table-wrap";
  wrapper.append(element);
  wrapper.table = element;
  return wrapper;
}
