/**
 * The insights page: sign in with the project's secret key, then live events, trends and funnels. The key is
 * checked against the API before it is kept (sessionStorage only); any later 401 returns here with the reason.
 * Navigation between views is history-based (`?view=`), so the back button and bookmarks work.
 */
import { api, ApiError, setUnauthorizedHandler } from "./api.ts";
import { resetCatalog } from "./catalog.ts";
import { h, replace } from "./dom.ts";
import { funnelsView } from "./funnels.ts";
import { liveView, type ViewHandle } from "./live.ts";
import { forgetKey, storedKey, storeKey } from "./session.ts";
import { decodeFunnels, decodeTrends, readLocation, urlFor, VIEWS, writeLocation, type View } from "./state.ts";
import { trendsView } from "./trends.ts";

const root = document.getElementById("app")!;
const TITLES: Record<View, string> = { live: "Live events", trends: "Trends", funnels: "Funnels" };
let current: ViewHandle | null = null;

function signIn(message?: string): void {
  current?.dispose();
  current = null;
  const input = h("input", { id: "key", type: "password", autocomplete: "off", spellcheck: "false", required: true, placeholder: "phs_…" });
  const error = h("p", { class: "error", id: "signin-error", role: "alert", hidden: !message }, message ?? "");
  const button = h("button", { type: "submit" }, "Sign in");
  // method=post and no `name` on the input: even if this script failed, the browser would put no key in a URL.
  const form = h(
    "form",
    { class: "signin", method: "post", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, "ingest insights"),
    h("p", { class: "lead" }, "Sign in with your project's secret key (the ", h("code", {}, "phs_…"), " key printed by ", h("code", {}, "bun run project:create"), ")."),
    h("label", { for: "key" }, "Project secret key"),
    input,
    error,
    button,
    h("p", { class: "hint" }, "The key stays in this tab's session storage and is sent only to this server's API."),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const key = input.value.trim();
    if (!key) return;
    button.disabled = true;
    error.hidden = true;
    // Any cheap authenticated call proves the key; the event names are needed next anyway.
    api("/api/event_names?days=90", undefined, key)
      .then(() => {
        storeKey(key);
        resetCatalog();
        shell();
      })
      .catch((err: unknown) => {
        button.disabled = false;
        error.hidden = false;
        error.textContent =
          err instanceof ApiError && err.status === 401
            ? "This key was not accepted: it is unknown or has been revoked. Check that you copied the secret key (phs_…), not the public token (phc_…)."
            : err instanceof ApiError
              ? `Cannot sign in right now: ${err.detail}`
              : "Cannot sign in right now.";
        input.focus();
        input.select();
      });
  });
  document.title = "Sign in · ingest insights";
  replace(root, h("main", { class: "signin-page" }, form));
  input.focus();
}

function shell(): void {
  const nav = h(
    "nav",
    { "aria-label": "Views" },
    VIEWS.map((v) => h("a", { href: urlFor(v), "data-view": v }, TITLES[v])),
  );
  nav.addEventListener("click", (e) => {
    const a = (e.target as Element).closest("a");
    if (!a || e.metaKey || e.ctrlKey || e.shiftKey) return;
    e.preventDefault();
    history.pushState(null, "", a.getAttribute("href")!);
    route();
  });
  const signOut = h("button", { type: "button", class: "secondary", onclick: () => (forgetKey(), signIn()) }, "Sign out");
  const main = h("main", { id: "main", tabindex: "-1" });
  replace(
    root,
    h("a", { class: "skip", href: "#main" }, "Skip to content"),
    h("header", { class: "top" }, h("span", { class: "brand" }, "ingest insights"), nav, signOut),
    main,
  );
  route();
}

function route(): void {
  const main = document.getElementById("main");
  if (!main) return;
  const { view, q } = readLocation();
  for (const a of document.querySelectorAll<HTMLAnchorElement>("nav a")) {
    if (a.dataset.view === view) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  current?.dispose();
  if (view === "trends") {
    const s = decodeTrends(q);
    writeLocation("trends", s);
    current = trendsView(s, (next) => writeLocation("trends", next));
  } else if (view === "funnels") {
    const s = decodeFunnels(q);
    writeLocation("funnels", s);
    current = funnelsView(s, (next) => writeLocation("funnels", next));
  } else {
    current = liveView();
  }
  document.title = `${TITLES[view]} · ingest insights`;
  replace(main, current.element);
}

setUnauthorizedHandler(() => {
  forgetKey();
  signIn("The key is no longer accepted (unknown or revoked). Sign in again.");
});
window.addEventListener("popstate", () => (storedKey() ? route() : undefined));
if (storedKey()) shell();
else signIn();
