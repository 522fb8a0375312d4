// The capture page's service worker: the page keeps working with the network cut off.
// Assets come from the cache first; pages and photos from the network, falling back to
// the copy kept from the last visit. Status and uploads are never cached: the page's
// script retries those itself.
const CACHE = "cdat-capture-v1";
const ASSETS = ["/capture/static/capture.css", "/capture/static/capture.js"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(ASSETS)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

function keptCopy(request) {
  return fetch(request).then((response) => {
    if (response.ok && response.type === "basic") {
      const copy = response.clone();
      caches.open(CACHE).then((cache) => cache.put(request, copy));
    }
    return response;
  }).catch(() => caches.match(request).then((hit) => hit || Response.error()));
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  if (url.pathname.startsWith("/capture/static/")) {
    event.respondWith(caches.match(request).then((hit) => hit || keptCopy(request)));
  } else if (request.mode === "navigate" || /^\/capture\/claim\/photos\/[^/]+$/.test(url.pathname)) {
    event.respondWith(keptCopy(request));
  }
});
