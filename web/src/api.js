// The chat API: POST /chat (Server-Sent Events over fetch when the API streams, JSON otherwise)
// and GET /chat/history. Errors come back as ApiError with the server's code and status.

export class ApiError extends Error {
  constructor(status, code, message, retryAfter) {
    super(message || code);
    this.status = status; // 0 when the network failed
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

async function failure(response) {
  let error = {};
  try {
    error = (await response.json()).error || {};
  } catch {
    /* not JSON: a proxy's error page */
  }
  return new ApiError(
    response.status,
    error.code || "http_" + response.status,
    error.message,
    Number(response.headers.get("Retry-After")) || 0,
  );
}

async function call(url, init) {
  let response;
  try {
    response = await fetch(url, init);
  } catch (cause) {
    throw new ApiError(0, "network", String(cause));
  }
  if (!response.ok) throw await failure(response);
  return response;
}

/**
 * Send one message. `onText(text)` is called with the reply so far as it streams (after a
 * `replace` event too). Resolves to the final reply: {session_id, reply, products, lead, lang}.
 */
export async function sendMessage(config, sessionId, message, onText) {
  const response = await call(config.api + "/chat", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "text/event-stream, application/json" },
    body: JSON.stringify({ message, session_id: sessionId, shop: config.shop }),
  });
  if (!(response.headers.get("Content-Type") || "").includes("text/event-stream")) {
    return response.json(); // the JSON fallback: an API (or proxy) that does not stream
  }
  let text = "";
  try {
    for await (const [event, data] of events(response)) {
      if (event === "delta") onText((text += data.text));
      else if (event === "replace") onText((text = data.text));
      else if (event === "done") return data;
      else if (event === "error") {
        const error = data.error || {};
        throw new ApiError(503, error.code, error.message);
      }
    }
  } catch (error) {
    throw error instanceof ApiError ? error : new ApiError(0, "network", String(error));
  }
  throw new ApiError(0, "network", "the stream ended before its last event");
}

/** The SSE events of a response body, as [name, parsed data] pairs. */
async function* events(response) {
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const chunk of chunks(response)) {
    buffer += typeof chunk === "string" ? chunk : decoder.decode(chunk, { stream: true });
    const blocks = buffer.split(/\r?\n\r?\n/);
    buffer = blocks.pop(); // an incomplete event waits for the next chunk
    for (const block of blocks) {
      let name = "message";
      const data = [];
      for (const line of block.split(/\r?\n/)) {
        const [, field, value] = /^([^:]*):? ?(.*)$/.exec(line);
        if (field === "event") name = value;
        else if (field === "data") data.push(value);
      }
      if (data.length) yield [name, JSON.parse(data.join("\n"))];
    }
  }
}

/** The body chunk by chunk; a browser without readable streams gets it in one piece. */
async function* chunks(response) {
  if (!response.body || !response.body.getReader) {
    yield (await response.text()) + "\n\n";
    return;
  }
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    yield value;
  }
}

/**
 * The stored conversation: {state, messages: [{id, role, author, text, at, products, lang}]}
 * (a reply's cards, as today); with `after` (a message id) only the messages after it.
 */
export async function history(config, sessionId, after) {
  const query = new URLSearchParams({ session_id: sessionId });
  if (config.shop) query.set("shop", config.shop);
  if (after) query.set("after", after);
  const response = await call(config.api + "/chat/history?" + query, {
    headers: { Accept: "application/json" },
  });
  return response.json();
}
