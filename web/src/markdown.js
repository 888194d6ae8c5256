// The markdown subset replies use: paragraphs, line breaks, "- " lists, **bold**, http(s) links
// (bare or [text](url)). Everything becomes elements and text nodes: server text is never parsed
// as HTML, so a reply cannot inject markup whatever it contains.

import { el } from "./dom.js";

const ITEM = /^\s*[-*•]\s+(.*)$/;
// **bold** | [label](http…) | bare http(s) URL (trailing punctuation left out of the link)
const INLINE =
  /\*\*(.+?)\*\*|\[([^\]\n]+)\]\((https?:\/\/[^\s)]+)\)|(https?:\/\/[^\s<>"]*[^\s<>".,;:!?)\]'"])/g;

/** Render `text` into `parent` (which is emptied first). */
export function renderMarkdown(parent, text) {
  parent.replaceChildren();
  let list = null;
  let para = null;
  for (const line of text.split("\n")) {
    const item = ITEM.exec(line);
    if (item) {
      if (!list) parent.append((list = el("ul")));
      const li = el("li");
      inline(li, item[1]);
      list.append(li);
      para = null;
    } else if (!line.trim()) {
      list = para = null; // a blank line ends the paragraph or list
    } else {
      list = null;
      if (para) para.append(el("br"));
      else parent.append((para = el("p")));
      inline(para, line);
    }
  }
}

function inline(parent, text) {
  let at = 0;
  for (const match of text.matchAll(INLINE)) {
    parent.append(text.slice(at, match.index)); // a string argument becomes a text node
    if (match[1] != null) {
      const strong = el("strong");
      inline(strong, match[1]);
      parent.append(strong);
    } else {
      parent.append(link(match[2] ?? match[4], match[3] ?? match[4]));
    }
    at = match.index + match[0].length;
  }
  parent.append(text.slice(at));
}

function link(label, href) {
  const a = el("a", "", label);
  a.href = href; // the pattern only admits http: and https:
  a.target = "_blank";
  a.rel = "noopener noreferrer";
  return a;
}

/** An http(s) URL, or null: a `javascript:` or `data:` URL from the server is never used. */
export function safeUrl(url) {
  if (!url) return null; // "" would resolve to the page itself
  try {
    const parsed = new URL(url, location.href);
    return /^https?:$/.test(parsed.protocol) ? parsed.href : null;
  } catch {
    return null;
  }
}
