// The console's words, French and English. t("key", ...values) fills {0}, {1}...

const WORDS = {
  en: {
    title: "Comptoir console", skip: "Skip to the content", signin: "Sign in", email: "E-mail", password: "Password",
    signin_failed: "Wrong e-mail or password.", link_failed: "This sign-in link is invalid or used.",
    rate_limited: "Too many attempts: try again later.", signout: "Sign out",
    inbox: "Inbox", orders: "Orders", customers: "Customers", settings: "Settings",
    catalog: "Catalogue", campaigns: "Campaigns", jobs: "Jobs", health: "Health", audit: "Audit log",
    nav: "Sections", language: "Language", unread: "unread", needs_human: "needs a person",
    channel: "Channel", state: "State", any: "Any", bot: "Assistant", human: "Person",
    search: "Search", filter: "Filter", no_conversations: "No conversation.",
    customer: "Customer", assistant: "Assistant", operator: "Adviser", unknown_customer: "Visitor",
    reply: "Reply", send: "Send", send_hint: "Ctrl+Enter sends", takeover: "Take over",
    release: "Hand back to the assistant", order: "Order", window_closed_template:
    "The WhatsApp 24-hour window is closed: your reply will send the template “{0}”.",
    window_closed_none: "The WhatsApp 24-hour window is closed and the shop has no template: no reply can be sent.",
    window_open: "WhatsApp window open until {0}.", sent_template: "Sent as the WhatsApp template.",
    sent: "Sent.", stored: "Saved: the customer sees it in the chat.",
    back: "Back", loading: "Loading…", more: "More", new_message: "New message in a conversation",
    status: "Status", all: "All", move_to: "Move to", move: "Move", moved: "Order moved to {0}.",
    no_moves: "This order is final.", total: "Total", no_orders: "No order.",
    no_customers: "No customer.", phone: "Phone", channels: "Channels", last_seen: "Last seen",
    export: "Export (JSON)", erase: "Erase", erase_confirm: "Type {0} to confirm the erasure",
    erased: "Customer erased.", conversations: "Conversations",
    persona: "Persona", offer: "Offer", offer_hint: "Offered to a customer hesitating on price.",
    system_prompt_addition: "Instructions added to the assistant's prompt",
    llm_provider: "LLM provider", llm_model: "LLM model", default: "(default)",
    whatsapp_template: "WhatsApp template name", whatsapp_language: "Template language",
    business_hours: "Business hours", hours_hint: "HH:MM-HH:MM, comma separated; empty: closed",
    payment_provider: "Payment provider", save: "Save", saved: "Saved.",
    web_search: "Web search",
    web_search_hint: "The assistant may search the web (SearXNG) and cite its sources; never for your prices.",
    voice_notes: "Answer voice notes with a voice note",
    voice_notes_hint: "On WhatsApp and Telegram, after the text reply; prices are said as written.",
    voice_notes_voice: "Voice (empty: the provider's default)", voice_notes_speed: "Speech speed (0.5 to 2)",
    voice: "Live voice calls",
    voice_hint: "A microphone button in the chat: customers talk with the assistant (needs the server's OpenAI key).",
    too_long: "At most {0} characters.", no_spaces: "No spaces.", bad_hours: "Expected HH:MM-HH:MM.",
    form_errors: "Fix the fields marked below.",
    upload: "Upload", file: "File (JSON or CSV)", kind: "What", faq: "FAQ", report: "Import report",
    upload_failed: "The upload failed.", choose_file: "Choose a file.",
    definition: "Definition (JSON, as the CLI takes it)", create: "Create", preview: "Preview",
    launch: "Launch", enable: "Enable", disable: "Disable", run_now: "Run now",
    enabled: "enabled", disabled: "disabled", audience: "Audience", next_run: "Next run",
    bad_json: "Not valid JSON.", launched: "Launched.", queued: "Queued.",
    ok: "OK", failing: "failing", when: "When", who: "Who", action: "Action", target: "Target",
    shortcuts: "Keyboard shortcuts", close: "Close", error: "Something went wrong: {0}",
    k_inbox: "go to the inbox", k_orders: "go to orders", k_customers: "go to customers",
    k_settings: "go to settings", k_search: "search", k_reply: "reply", k_help: "this help",
    k_send: "send the reply",
    mon: "Monday", tue: "Tuesday", wed: "Wednesday", thu: "Thursday", fri: "Friday",
    sat: "Saturday", sun: "Sunday",
    s_draft: "draft", s_confirmed: "confirmed", s_awaiting_payment: "awaiting payment",
    s_paid: "paid", s_payment_failed: "payment failed", s_payment_mismatch: "payment mismatch",
    s_fulfilled: "delivered", s_cancelled: "cancelled",
  },
  fr: {
    title: "Console Comptoir", skip: "Aller au contenu", signin: "Se connecter", email: "E-mail", password: "Mot de passe",
    signin_failed: "E-mail ou mot de passe incorrect.", link_failed: "Ce lien de connexion est invalide ou déjà utilisé.",
    rate_limited: "Trop de tentatives : réessayez plus tard.", signout: "Se déconnecter",
    inbox: "Conversations", orders: "Commandes", customers: "Clients", settings: "Réglages",
    catalog: "Catalogue", campaigns: "Campagnes", jobs: "Tâches", health: "État", audit: "Journal",
    nav: "Rubriques", language: "Langue", unread: "non lues", needs_human: "attendent un conseiller",
    channel: "Canal", state: "État", any: "Tous", bot: "Assistant", human: "Conseiller",
    search: "Rechercher", filter: "Filtrer", no_conversations: "Aucune conversation.",
    customer: "Client", assistant: "Assistant", operator: "Conseiller", unknown_customer: "Visiteur",
    reply: "Répondre", send: "Envoyer", send_hint: "Ctrl+Entrée envoie", takeover: "Prendre la main",
    release: "Rendre la main à l'assistant", order: "Commande", window_closed_template:
    "La fenêtre WhatsApp de 24 h est fermée : votre réponse enverra le modèle « {0} ».",
    window_closed_none: "La fenêtre WhatsApp de 24 h est fermée et la boutique n'a pas de modèle : impossible de répondre.",
    window_open: "Fenêtre WhatsApp ouverte jusqu'à {0}.", sent_template: "Envoyé comme modèle WhatsApp.",
    sent: "Envoyé.", stored: "Enregistré : le client le voit dans le chat.",
    back: "Retour", loading: "Chargement…", more: "Plus", new_message: "Nouveau message dans une conversation",
    status: "Statut", all: "Toutes", move_to: "Passer à", move: "Changer", moved: "Commande passée à : {0}.",
    no_moves: "Cette commande est terminée.", total: "Total", no_orders: "Aucune commande.",
    no_customers: "Aucun client.", phone: "Téléphone", channels: "Canaux", last_seen: "Vu le",
    export: "Exporter (JSON)", erase: "Effacer", erase_confirm: "Tapez {0} pour confirmer l'effacement",
    erased: "Client effacé.", conversations: "Conversations",
    persona: "Persona", offer: "Offre", offer_hint: "Proposée à un client qui hésite sur le prix.",
    system_prompt_addition: "Consignes ajoutées au prompt de l'assistant",
    llm_provider: "Fournisseur du modèle", llm_model: "Modèle", default: "(par défaut)",
    whatsapp_template: "Nom du modèle WhatsApp", whatsapp_language: "Langue du modèle",
    business_hours: "Heures d'ouverture", hours_hint: "HH:MM-HH:MM, séparées par des virgules ; vide : fermé",
    payment_provider: "Moyen de paiement", save: "Enregistrer", saved: "Enregistré.",
    web_search: "Recherche sur le web",
    web_search_hint: "L'assistant peut chercher sur le web (SearXNG) et en citer les sources ; jamais pour vos prix.",
    voice_notes: "Répondre aux messages vocaux par un message vocal",
    voice_notes_hint: "Sur WhatsApp et Telegram, après la réponse écrite ; les prix sont dits comme écrits.",
    voice_notes_voice: "Voix (vide : celle du fournisseur)", voice_notes_speed: "Débit (0,5 à 2)",
    voice: "Appels vocaux en direct",
    voice_hint: "Un bouton micro dans le chat : vos clients parlent à l'assistant (il faut la clé OpenAI du serveur).",
    too_long: "{0} caractères au plus.", no_spaces: "Sans espace.", bad_hours: "Format attendu : HH:MM-HH:MM.",
    form_errors: "Corrigez les champs signalés ci-dessous.",
    upload: "Envoyer", file: "Fichier (JSON ou CSV)", kind: "Quoi", faq: "FAQ", report: "Rapport d'import",
    upload_failed: "L'envoi a échoué.", choose_file: "Choisissez un fichier.",
    definition: "Définition (JSON, comme pour la CLI)", create: "Créer", preview: "Aperçu",
    launch: "Lancer", enable: "Activer", disable: "Désactiver", run_now: "Lancer maintenant",
    enabled: "active", disabled: "inactive", audience: "Audience", next_run: "Prochaine exécution",
    bad_json: "JSON invalide.", launched: "Lancée.", queued: "En file.",
    ok: "OK", failing: "en panne", when: "Quand", who: "Qui", action: "Action", target: "Cible",
    shortcuts: "Raccourcis clavier", close: "Fermer", error: "Une erreur est survenue : {0}",
    k_inbox: "aller aux conversations", k_orders: "aller aux commandes", k_customers: "aller aux clients",
    k_settings: "aller aux réglages", k_search: "rechercher", k_reply: "répondre", k_help: "cette aide",
    k_send: "envoyer la réponse",
    mon: "Lundi", tue: "Mardi", wed: "Mercredi", thu: "Jeudi", fri: "Vendredi",
    sat: "Samedi", sun: "Dimanche",
    s_draft: "brouillon", s_confirmed: "confirmée", s_awaiting_payment: "en attente de paiement",
    s_paid: "payée", s_payment_failed: "paiement échoué", s_payment_mismatch: "paiement incohérent",
    s_fulfilled: "livrée", s_cancelled: "annulée",
  },
};

// The language is a preference, not a secret: kept across visits.
let lang = localStorage.getItem("comptoir-lang") ||
  ((navigator.language || "").toLowerCase().startsWith("fr") ? "fr" : "en");

export const getLang = () => lang;

export function setLang(next) {
  lang = next;
  localStorage.setItem("comptoir-lang", next);
  document.documentElement.lang = next;
}

export function t(key, ...values) {
  const text = WORDS[lang][key] ?? WORDS.en[key] ?? key;
  return text.replace(/\{(\d)\}/g, (_, i) => values[i]);
}

export const when = (seconds) =>
  seconds ? new Date(seconds * 1000).toLocaleString(lang, { dateStyle: "short", timeStyle: "short" }) : "";

export function money(amount, currency) {
  if (amount == null) return "";
  try {
    return new Intl.NumberFormat(lang, { style: "currency", currency }).format(amount);
  } catch {
    return `${amount} ${currency || ""}`.trim();
  }
}
