// Product cards under a reply: image, title, price, link; on a Shopify store an "Add to cart"
// button that posts the card's variant to Shopify's AJAX Cart API (/cart/add.js).

import { el } from "./dom.js";
import { safeUrl } from "./markdown.js";

// As the server writes prices in replies (shared/money.py), so card and text agree.
const SYMBOLS = { XOF: "FCFA", XAF: "FCFA", EUR: "€", USD: "$", GBP: "£" };

export function formatPrice(amount, currency, locale) {
  const cents = amount % 1 ? 2 : 0;
  const number = new Intl.NumberFormat(locale, {
    minimumFractionDigits: cents,
    maximumFractionDigits: cents,
  }).format(amount);
  return number + " " + (SYMBOLS[currency] || currency);
}

/**
 * A list of cards for `products`, or null when there are none. Prices are written in `lang`, the
 * reply's language (French, else English, as the server writes them), else the panel's.
 */
export function productCards(products, t, lang) {
  if (!products || !products.length) return null;
  const locale = lang ? (lang === "fr" ? "fr-FR" : "en-US") : t.locale;
  const list = el("ul", "cards");
  list.setAttribute("aria-label", t.products);
  for (const product of products) list.append(card(product, t, locale));
  return list;
}

function card(product, t, locale) {
  const item = el("li", "card");
  const href = safeUrl(product.url);
  const image = safeUrl(product.image);
  if (image) {
    const img = el("img");
    img.alt = ""; // the title next to it says what it is
    img.loading = "lazy";
    img.decoding = "async";
    img.src = image;
    img.onerror = () => img.remove(); // the grey placeholder behind it stays
    const frame = el("div", "img");
    frame.append(img);
    item.append(frame);
  }
  const title = el(href ? "a" : "span", "title", product.title);
  if (href) title.href = href;
  item.append(title);
  if (typeof product.price === "number") {
    item.append(el("span", "price", formatPrice(product.price, product.currency, locale)));
  }
  // Only on a Shopify storefront, and only for a real Shopify variant.
  if (window.Shopify && product.variant_id != null) {
    const button = el("button", "add", t.addToCart);
    button.type = "button";
    button.addEventListener("click", () => addToCart(button, product.variant_id, t));
    item.append(button);
  }
  return item;
}

async function addToCart(button, variantId, t) {
  const root = (window.Shopify.routes && window.Shopify.routes.root) || "/";
  if (button.dataset.added) {
    location.href = root + "cart";
    return;
  }
  button.disabled = true;
  try {
    const response = await fetch(root + "cart/add.js", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ items: [{ id: Number(variantId), quantity: 1 }] }),
    });
    if (!response.ok) throw new Error(String(response.status));
    button.dataset.added = "1";
    button.textContent = t.added;
  } catch {
    button.textContent = t.addFailed; // sold out (422) or offline: say so, allow another try
  } finally {
    button.disabled = false;
  }
}
