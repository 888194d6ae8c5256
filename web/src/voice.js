// Comptoir live voice: loaded by the panel only when the shopper presses the microphone button
// (content-hashed file, cached a year; its own size budget).
//
// The browser talks to the realtime provider directly with a short-lived secret minted by
// POST /chat/voice/session: WebRTC with OpenAI (its events on the "oai-events" data channel), a
// WebSocket with Gemini Live (PCM audio in JSON messages). The provider's tool calls are run by
// POST /chat/voice/tools (the browser never decides a result); both sides' transcripts are stored
// with POST /chat/voice/transcript, so the call joins the conversation's history.
// Like the panel, it hands its `startCall` over with a DOM event rather than a global.

import css from "./voice.css";
import { el } from "./dom.js";

const GATHER_MS = 2000; // the offer waits at most this long for its ICE candidates
const MIC_RATE = 16000; // Gemini Live hears 16 kHz PCM16 and speaks 24 kHz PCM16
const SPEAKER_RATE = 24000;

const toBase64 = (bytes) => btoa(String.fromCharCode(...bytes));
const fromBase64 = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));

// The microphone's samples (the context's rate, -1..1) as 16 kHz PCM16: each output sample the
// mean of the input samples it spans (a plain low-pass before the decimation).
function pcm16(samples, rate) {
  const step = rate / MIC_RATE;
  const out = new Int16Array(Math.floor(samples.length / step));
  for (let i = 0; i < out.length; i++) {
    let sum = 0;
    const from = Math.floor(i * step);
    const to = Math.floor((i + 1) * step);
    for (let j = from; j < to; j++) sum += samples[j];
    out[i] = Math.max(-1, Math.min(1, sum / (to - from))) * 0x7fff;
  }
  return new Uint8Array(out.buffer);
}

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
  let socket = null; // Gemini's
  let speaker = null; // Gemini's AudioContext: the microphone's tap and the reply's playback
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
    if (socket) socket.close();
    if (speaker) speaker.close();
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

  // The tool's output (a JSON string), run by the server.
  async function relay(call_id, name, args) {
    try {
      const result = await postJson(config.api + "/chat/voice/tools", {
        session_id: sessionId,
        call_id,
        name,
        arguments: args,
      });
      return result.output;
    } catch {
      return JSON.stringify({ error: "unavailable" }); // the assistant says it could not look
    }
  }

  async function runTool({ call_id, name, arguments: args }) {
    const output = await relay(call_id, name, args);
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
    return session.provider === "gemini" ? gemini(session) : webrtc(session);
  }

  // --- Gemini Live: a WebSocket of JSON messages ------------------------------------------
  // The token locks the call's setup (persona, tools, voice, transcriptions) on the server's
  // side, so the first message only names the model. The microphone is tapped with a
  // ScriptProcessorNode: deprecated, but an AudioWorklet needs a module URL, which a host
  // page's CSP may refuse (blob:) and which would be a third file to build and serve.
  function gemini(session) {
    const lines = { user: "", assistant: "" }; // the turn's words so far, by side
    const nodes = {}; // their caption bubbles
    const playing = new Set();
    const callId = Date.now().toString(36); // the lines' item ids: unique across calls
    let turn = 0;
    let playAt = 0;
    let open = false; // the provider accepted the setup

    const say = (message) => socket.readyState === 1 && socket.send(JSON.stringify(message));

    function heard(role, text) {
      if (!text) return;
      if (role === "assistant") flush("user"); // the shopper's turn is over
      lines[role] += text;
      (nodes[role] ||= panel.caption(role)).textContent = lines[role];
    }

    function flush(role) {
      transcript(role, lines[role].trim(), callId + "-" + turn + "-" + role);
      lines[role] = "";
      nodes[role] = null;
    }

    function play(data) {
      const bytes = fromBase64(data);
      const samples = new Int16Array(bytes.buffer, 0, bytes.length >> 1);
      const buffer = speaker.createBuffer(1, samples.length || 1, SPEAKER_RATE);
      buffer.getChannelData(0).set(Float32Array.from(samples, (v) => v / 0x8000));
      const source = speaker.createBufferSource();
      source.buffer = buffer;
      source.connect(speaker.destination);
      playAt = Math.max(playAt, speaker.currentTime);
      source.start(playAt);
      playAt += buffer.duration;
      playing.add(source);
      source.onended = () => playing.delete(source);
    }

    async function runTools(calls) {
      flush("user");
      const functionResponses = await Promise.all(
        calls.map(async ({ id, name, args }) => {
          const output = JSON.parse(await relay(id, name, JSON.stringify(args || {})));
          const response = output && output.constructor === Object ? output : { output };
          return { id, name, response };
        }),
      );
      say({ toolResponse: { functionResponses } });
    }

    function onMessage(message) {
      if (message.setupComplete) {
        open = true;
        status.textContent = t.inCall;
        const source = speaker.createMediaStreamSource(stream);
        const tap = speaker.createScriptProcessor(4096, 1, 1);
        tap.onaudioprocess = (event) => {
          const data = toBase64(pcm16(event.inputBuffer.getChannelData(0), speaker.sampleRate));
          say({ realtimeInput: { audio: { data, mimeType: "audio/pcm;rate=" + MIC_RATE } } });
        };
        source.connect(tap);
        tap.connect(speaker.destination); // silent: a processor runs only when connected
      }
      if (message.toolCall) runTools(message.toolCall.functionCalls || []);
      const content = message.serverContent;
      if (!content) return;
      if (content.inputTranscription) heard("user", content.inputTranscription.text);
      if (content.outputTranscription) heard("assistant", content.outputTranscription.text);
      for (const part of (content.modelTurn && content.modelTurn.parts) || []) {
        if (part.inlineData) play(part.inlineData.data);
      }
      if (content.interrupted) {
        // Barge-in (the provider's own voice detection): silence what is still queued.
        playing.forEach((source) => source.stop());
        playAt = 0;
      }
      if (content.interrupted || content.turnComplete) {
        flush("user");
        flush("assistant");
        turn++;
      }
    }

    speaker = new AudioContext();
    const token = encodeURIComponent(session.client_secret);
    socket = new WebSocket(session.url + "?access_token=" + token);
    socket.onopen = () => say({ setup: { model: session.model } });
    socket.onmessage = async ({ data }) => {
      try {
        onMessage(JSON.parse(typeof data === "string" ? data : await data.text()));
      } catch {
        /* not a message we understand */
      }
    };
    socket.onclose = () => end(open ? t.voiceDropped : t.voiceFailed);
  }

  // --- OpenAI Realtime: WebRTC, its events on a data channel ------------------------------
  async function webrtc(session) {
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
