// The only way the dashboard talks to the server: POST /graphql with the pasted token.
const TOKEN_KEY = "wareports.token";

export const token = {
  get: () => window.sessionStorage.getItem(TOKEN_KEY),
  set: (value) => window.sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => window.sessionStorage.removeItem(TOKEN_KEY),
};

// What each GraphQL error code means to the person reading the dashboard.
const ADVICE = {
  UNAUTHENTICATED: "The server does not accept this token: paste a valid one.",
  FORBIDDEN: "This token lacks the scope this needs (reports:read to read, reports:export to download CSV).",
  BAD_USER_INPUT: "The filter was refused; change it and the view reloads.",
  BAD_REQUEST: "The server refused the request as malformed.",
  QUERY_TOO_COMPLEX: "This view asks for too much at once: choose a shorter date range.",
  RATE_LIMITED: "Too many requests with this token: wait a moment, then change the filter or reload.",
  INTERNAL_SERVER_ERROR: "The server failed to answer; its log has the details (request id below).",
  NETWORK: "The server cannot be reached.",
};

export class ApiError extends Error {
  constructor(code, message, { status = 0, field = null, scope = null, requestId = null, retryAfter = null } = {}) {
    super(message);
    this.code = code;
    this.status = status;
    this.field = field;
    this.scope = scope;
    this.requestId = requestId;
    this.retryAfter = retryAfter;
  }

  get advice() {
    return ADVICE[this.code] || "The request failed.";
  }

  get signInAgain() {
    return this.code === "UNAUTHENTICATED";
  }

  describe() {
    const parts = [this.advice, `${this.code}${this.status ? ` (HTTP ${this.status})` : ""}: ${this.message}`];
    if (this.field) parts.push(`field: ${this.field}`);
    if (this.scope) parts.push(`scope needed: ${this.scope}`);
    if (this.retryAfter) parts.push(`retry after ${this.retryAfter} s`);
    if (this.requestId) parts.push(`request id ${this.requestId}`);
    return parts.join(" — ");
  }
}

export async function graphql(query, variables = {}) {
  const secret = token.get();
  let response;
  try {
    response = await fetch("/graphql", {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json",
        ...(secret ? { Authorization: `Bearer ${secret}` } : {}),
      },
      body: JSON.stringify({ query, variables }),
      credentials: "omit",
      cache: "no-store",
    });
  } catch (error) {
    throw new ApiError("NETWORK", String(error.message || error));
  }
  const requestId = response.headers.get("X-Request-ID");
  const retryAfter = response.headers.get("Retry-After");
  let body = null;
  try {
    body = await response.json();
  } catch {
    throw new ApiError(response.status >= 500 ? "INTERNAL_SERVER_ERROR" : "BAD_REQUEST",
      `not a JSON answer (HTTP ${response.status})`, { status: response.status, requestId });
  }
  const error = body && Array.isArray(body.errors) && body.errors[0];
  if (error) {
    const extensions = error.extensions || {};
    let code = extensions.code || (response.status === 401 ? "UNAUTHENTICATED" : "INTERNAL_SERVER_ERROR");
    if (response.status === 403 && !extensions.code) code = "FORBIDDEN";
    throw new ApiError(code, error.message, {
      status: response.status,
      field: extensions.field || null,
      scope: extensions.scope || null,
      requestId: extensions.requestId || requestId,
      retryAfter,
    });
  }
  if (!response.ok) {
    throw new ApiError(response.status === 401 ? "UNAUTHENTICATED" : response.status === 403 ? "FORBIDDEN" : "INTERNAL_SERVER_ERROR",
      `HTTP ${response.status}`, { status: response.status, requestId, retryAfter });
  }
  return body.data;
}
