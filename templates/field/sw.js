// The field app's service worker (version {{ version }}): keeps the app shell for offline use
// and sends the queue on Background Sync. Rendered by contributions/field/views.py.
import { get } from "{{ store_url }}";
import { syncAll } from "{{ sync_url }}";

const CACHE = "bpu-field-{{ version }}";
const PRECACHE = {{ precache|safe }};
const SHELL = "/field/";

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(PRECACHE)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith("bpu-field-") && k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  if (url.pathname === SHELL) {
    // The shell from this release's cache at once (a weak signal must not stall the form). It
    // changes only with a new service worker, whose install caches the new shell and its files
    // together: a page never pairs an HTML with scripts it has not got.
    // In the language the agent chose in the app (kept on the phone), Indonesian by default.
    const shell = get("meta", "lang")
      .catch(() => null)
      .then((lang) => caches.match(`${SHELL}?lang=${lang === "en" ? "en" : "id"}`, { cacheName: CACHE }))
      .then((hit) => hit || fetch(request));
    event.respondWith(shell);
    return;
  }
  if (PRECACHE.includes(url.pathname + url.search)) {
    event.respondWith(caches.match(url.pathname + url.search).then((hit) => hit || fetch(request)));
  }
});

self.addEventListener("sync", (event) => {
  if (event.tag === "bpu-field-queue") event.waitUntil(syncAll());
});
