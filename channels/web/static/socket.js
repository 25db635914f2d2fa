// The WebSocket to the hub, reconnecting with backoff (docs/API.md, "WebSocket").
//
// The page never handles keys: the socket is same-origin and the browser sends the login
// cookie. A dropped socket is retried after 0.3 s, then twice as long each time (at most 10 s,
// with jitter so a hub restart is not met by every tab at once); coming back online or to the
// tab retries at once.

const FIRST_DELAY_MS = 300;
const MAX_DELAY_MS = 10000;

export class Connection {
  constructor({ onOpen, onMessage, onState }) {
    this.onOpen = onOpen;
    this.onMessage = onMessage;
    this.onState = onState;
    this.ws = null;
    this.failures = 0;
    this.timer = null;
    this.retryAt = 0;
    window.addEventListener("online", () => this.retryNow());
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") this.retryNow();
    });
  }

  get open() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  url() {
    const url = new URL("ws", window.location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    return url.href;
  }

  connect() {
    clearTimeout(this.timer);
    this.timer = null;
    this.onState(this.failures ? "reconnecting" : "connecting");
    const ws = new WebSocket(this.url());
    this.ws = ws;
    ws.addEventListener("open", () => {
      this.failures = 0;
      this.onState("online");
      this.onOpen();
    });
    ws.addEventListener("message", (event) => {
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        return; // not ours to show: the protocol is JSON objects only
      }
      if (msg && typeof msg === "object") this.onMessage(msg);
    });
    ws.addEventListener("close", (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.scheduleRetry(event.code);
    });
  }

  scheduleRetry(code) {
    this.failures += 1;
    const base = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** (this.failures - 1));
    const delay = Math.round(base * (0.75 + Math.random() * 0.5));
    this.retryAt = Date.now() + delay;
    this.onState("reconnecting", { delay, code, failures: this.failures });
    this.timer = setTimeout(() => this.connect(), delay);
  }

  retryNow() {
    if (this.ws === null && this.timer !== null) this.connect();
  }

  send(message) {
    if (!this.open) return false;
    this.ws.send(JSON.stringify(message));
    return true;
  }
}
