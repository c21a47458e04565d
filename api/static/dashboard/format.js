// How figures read: numbers in the browser's locale, durations as people say them.
const integer = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat(undefined, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
const pad = (value) => String(value).padStart(2, "0");

export const DASH = "—";

export function count(value) {
  return value === null || value === undefined ? DASH : integer.format(value);
}

export function rating(value) {
  return value === null || value === undefined ? DASH : decimal.format(value);
}

export function percent(value) {
  return value === null || value === undefined ? DASH : `${decimal.format(value)} %`;
}

// 42 s, 4 min 12 s, 2 h 05 min, 3 d 04 h.
export function duration(seconds) {
  if (seconds === null || seconds === undefined) return DASH;
  const total = Math.round(seconds);
  if (total < 60) return `${total} s`;
  if (total < 3600) return `${Math.floor(total / 60)} min ${pad(total % 60)} s`;
  if (total < 86400) return `${Math.floor(total / 3600)} h ${pad(Math.floor((total % 3600) / 60))} min`;
  return `${integer.format(Math.floor(total / 86400))} d ${pad(Math.floor((total % 86400) / 3600))} h`;
}

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeZone: "UTC" });

// A calendar date ("2026-11-24") in the browser's words, never shifted by its zone.
export function day(isoDate) {
  const [y, m, d] = isoDate.split("-").map(Number);
  return dateFormat.format(new Date(Date.UTC(y, m - 1, d)));
}

// An instant in the report's zone (the filter's, else the account's).
export function instant(isoInstant, timeZone) {
  const options = { dateStyle: "short", timeStyle: "short" };
  try {
    return new Intl.DateTimeFormat(undefined, { ...options, timeZone }).format(new Date(isoInstant));
  } catch {
    return new Intl.DateTimeFormat(undefined, options).format(new Date(isoInstant));
  }
}

export const SOURCE_NAMES = { FLOW: "Flow", INBOUND: "Inbound", INBOX: "Inbox" };

export function words(enumValue) {
  return enumValue ? enumValue.charAt(0) + enumValue.slice(1).toLowerCase() : DASH;
}
