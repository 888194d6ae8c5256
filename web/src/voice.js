// Comptoir live voice: loaded by the panel only when the shopper presses the microphone button
// (content-hashed file, cached a year; its own size budget).
//
// The browser talks WebRTC to the realtime provider directly with a short-lived secret minted by
// POST /chat/voice/session; the provider's tool calls come back over the "oai-events" data channel
// and are run by POST /chat/voice/tools (the browser never decides a result); both sides' transcripts
// are stored with POST /chat/voice/transcript, so the call joins the conversation's history.
// Like the panel, it hands its `startCall` over with a DOM event rather than a global.

import css from "./voice.css";
import { el } from "./dom.js";

const GATHER_MS = 2000; // the offer waits at most this long for its ICE candidates

async function postJson(url, body) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error("HTTP " + response.status);
  return response.status === 204 ? null : response.json();
}

// The offer with its candidates: a peer that cannot trickle (the provider's SDP endpoint takes
// one POST) must find our addresses in it.
function gathered(pc) {
  return new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") return resolve();
    const done = () => pc.iceGatheringState === "complete" && resolve();
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, GATHER_MS);
  });
}

/**
 * Start a call. `panel` is what the panel lends: {config, t, sessionId, adopt, place(node),
 * caption(role) -> bubble node, notice(text), onSession(id), onEnd()}.
 * Returns {hangUp}. Any failure ends the call with a notice; the text chat is untouched.
 */
function startCall(panel) {
  const { config, t } = panel;
  panel.adopt(css);
  let sessionId = panel.sessionId;
  let pc = null;
  let channel = null;
  let stream = null;
  let ended = false;
  let responding = false; // a response is being generated
  let playing = false; // its audio is still coming out of the speaker
  const bubbles = new Map(); // assistant caption bubbles by item id

  const bar = el("div", "call");
  bar.setAttribute("role", "group");
  bar.setAttribute("aria-label", t.voiceCall);
  const status = el("p", "status", t.connecting);
  status.setAttribute("role", "status");
  const caption = el("p", "caption"); // each finished line once, for screen readers
  caption.setAttribute("aria-live", "polite");
  const hangButton = el("button", "hang", t.hangUp);
  hangButton.type = "button";
  hangButton.addEventListener("click", () => end());
  const audio = el("audio");
  audio.autoplay = true;
  bar.append(status, caption, hangButton, audio);
  panel.place(bar);
  hangButton.focus();

  function end(message) {
    if (ended) return;
    ended = true;
    if (stream) stream.getTracks().forEach((track) => track.stop());
    if (pc) pc.close();
    audio.srcObject = null;
    bar.remove();
    panel.notice(message);
    panel.onEnd();
  }

  const send = (event) => {
    if (channel && channel.readyState === "open") channel.send(JSON.stringify(event));
  };

  function transcript(role, text, itemId) {
    if (!text) return;
    const colon = config.lang === "fr" ? " : " : ": ";
    caption.textContent = (role === "user" ? t.you : config.title) + colon + text;
    // Best effort: a line that cannot be stored must not end the call.
    postJson(config.api + "/chat/voice/transcript", {
      session_id: sessionId,
      role,
      text,
      item_id: itemId,
    }).catch(() => {});
  }

  async function runTool({ call_id, name, arguments: args }) {
    let output;
    try {
      const result = await postJson(config.api + "/chat/voice/tools", {
        session_id: sessionId,
        call_id,
        name,
        arguments: args,
      });
      output = result.output;
    } catch {
      output = JSON.stringify({ error: "unavailable" }); // the assistant says it could not look
    }
    const item = { type: "function_call_output", call_id, output };
    send({ type: "conversation.item.create", item });
    send({ type: "response.create" });
  }

  function assistantBubble(itemId) {
    let node = bubbles.get(itemId);
    if (!node) bubbles.set(itemId, (node = panel.caption("assistant")));
    return node;
  }

  function onEvent(event) {
    switch (event.type) {
      case "response.created":
        responding = true;
        audio.muted = false;
        break;
      case "response.done":
        responding = false;
        break;
      case "output_audio_buffer.started":
        playing = true;
        break;
      case "output_audio_buffer.stopped":
      case "output_audio_buffer.cleared":
        playing = false;
        break;
      case "response.function_call_arguments.done":
        runTool(event);
        break;
      case "response.output_audio_transcript.delta":
        assistantBubble(event.item_id).textContent += event.delta || "";
        break;
      case "response.output_audio_transcript.done":
        assistantBubble(event.item_id).textContent = event.transcript;
        transcript("assistant", event.transcript, event.item_id);
        break;
      case "conversation.item.input_audio_transcription.completed":
        panel.caption("user").textContent = event.transcript;
        transcript("user", event.transcript, event.item_id);
        break;
      case "input_audio_buffer.speech_started":
        // Barge-in: the shopper talks over the assistant, who stops at once.
        if (responding || playing) {
          if (responding) send({ type: "response.cancel" });
          send({ type: "output_audio_buffer.clear" });
          audio.muted = true;
          responding = playing = false;
        }
        break;
    }
  }

  async function connect() {
    const session = await postJson(config.api + "/chat/voice/session", {
      shop: config.shop,
      session_id: sessionId,
    });
    sessionId = session.session_id || sessionId;
    panel.onSession(sessionId);
    if (ended) return;
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    if (ended) return stream.getTracks().forEach((track) => track.stop());
    pc = new RTCPeerConnection();
    pc.addEventListener("track", (event) => {
      audio.srcObject = event.streams[0] || new MediaStream([event.track]);
    });
    pc.addEventListener("connectionstatechange", () => {
      if (pc.connectionState === "connected") status.textContent = t.inCall;
      else if (pc.connectionState === "failed") end(t.voiceDropped);
    });
    for (const track of stream.getTracks()) pc.addTrack(track, stream);
    channel = pc.createDataChannel("oai-events");
    channel.addEventListener("message", (message) => {
      try {
        onEvent(JSON.parse(message.data));
      } catch {
        /* not an event we understand */
      }
    });
    channel.addEventListener("close", () => end(t.voiceDropped));
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const answer = await fetch(session.url, {
      method: "POST",
      headers: {
        Authorization: "Bearer " + session.client_secret,
        "Content-Type": "application/sdp",
      },
      body: pc.localDescription.sdp,
    });
    if (!answer.ok) throw new Error("SDP HTTP " + answer.status);
    const sdp = await answer.text();
    if (!ended) await pc.setRemoteDescription({ type: "answer", sdp });
  }

  connect().catch((error) => {
    end(error && error.name === "NotAllowedError" ? t.micDenied : t.voiceFailed);
  });
  return { hangUp: () => end() };
}

document.dispatchEvent(new CustomEvent("comptoir:voice", { detail: startCall }));
