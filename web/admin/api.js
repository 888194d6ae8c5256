// The console's API client (/admin/api, next to the console's own URL). The session is an
// HttpOnly cookie; its CSRF token lives in this module only (never in storage) and goes with
// every write. A 401 anywhere sends the operator back to the sign-in screen.

export const BASE = new URL("api/", document.baseURI).pathname;
const KINDS = ["message_in", "message_out", "tool_call", "handoff", "operator_reply", "takeover",
  "release", "order_status", "payment", "campaign_send", "error"];

let csrf = "";
let onSignedOut = () => {};

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || String(status));
    this.status = status;
    this.code = code;
  }
}

/** Who to call when the session is gone (the sign-in screen). */
export function whenSignedOut(callback) {
  onSignedOut = callback;
}

/** Keep the session's CSRF token from /me or a sign-in answer ("" signs out). */
export function useSession(session) {
  csrf = session ? session.csrf : "";
  return session;
}

function failed(status, data, path) {
  const error = data && data.error ? data.error : {};
  if (status === 401 && !path.startsWith("login")) onSignedOut();
  return new ApiError(status, error.code, error.message);
}

/** GET (no body) or POST a JSON body; the answer's JSON, or an ApiError. */
export async function call(path, body) {
  const write = body !== undefined;
  const headers = { Accept: "application/json" };
  if (write) {
    headers["Content-Type"] = "application/json";
    headers["X-CSRF-Token"] = csrf;
  }
  const response = await fetch(BASE + path, {
    method: write ? "POST" : "GET",
    headers,
    body: write ? JSON.stringify(body) : undefined,
    credentials: "same-origin",
  });
  const data = await response.json().catch(() => null);
  if (!response.ok) throw failed(response.status, data, path);
  return data;
}

/** POST a file as it is (its report answered), calling progress(fraction) as it goes up. */
export function upload(path, file, progress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", BASE + path);
    const csv = /\.csv$/i.test(file.name) || file.type === "text/csv";
    xhr.setRequestHeader("Content-Type", csv ? "text/csv" : "application/json");
    xhr.setRequestHeader("X-CSRF-Token", csrf);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = (e) => e.lengthComputable && progress(e.loaded / e.total);
    xhr.onload = () => {
      let data = null;
      try {
        data = JSON.parse(xhr.responseText);
      } catch {}
      if (xhr.status >= 200 && xhr.status < 300) resolve(data);
      else reject(failed(xhr.status, data, path));
    };
    xhr.onerror = () => reject(new ApiError(0, "network", "network error"));
    xhr.send(file);
  });
}

/** Follow the shop's event log: SSE with the browser's reconnects, or JSON long-polls when
 * EventSource is missing or refused (a platform that buffers SSE). Each (re)connection first
 * hands a {kind: "sync"} event: what happened while not connected is read again by the
 * screens. Returns a stop function. */
export function follow(onEvent) {
  let cursor = "";
  let stopped = false;
  let source = null;
  const seen = (event) => {
    if (event.id) cursor = String(event.id);
    onEvent(event);
  };

  const sync = () => onEvent({ kind: "sync", conversation_id: null });

  async function poll() {
    let pause = 1000;
    sync();
    while (!stopped) {
      try {
        const query = cursor ? `?after=${encodeURIComponent(cursor)}` : "";
        const data = await call(`events${query}`);
        data.events.forEach(seen);
        if (data.cursor) cursor = String(data.cursor);
        pause = 1000;
      } catch (error) {
        if (error.status === 401) return;
        await new Promise((done) => setTimeout(done, pause));
        pause = Math.min(pause * 2, 30000);
      }
    }
  }

  if (typeof EventSource === "function") {
    source = new EventSource(BASE + "events", { withCredentials: true });
    const read = (message) => {
      try {
        seen({ ...JSON.parse(message.data), id: message.lastEventId });
      } catch {}
    };
    for (const kind of KINDS) source.addEventListener(kind, read);
    source.onmessage = read;
    source.onopen = sync;
    // The browser reconnects by itself (Last-Event-ID) after the server ends a stream; CLOSED
    // means it gave up (an error status or not an event stream): long-poll from where it was.
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED && !stopped) {
        source = null;
        poll();
      }
    };
  } else {
    poll();
  }
  return () => {
    stopped = true;
    if (source) source.close();
  };
}
