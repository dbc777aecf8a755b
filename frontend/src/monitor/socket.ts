// A live subscription that never loses an entry: it reconnects after any drop with the
// last seq it has (see runtime/consumers.py for the server side of the protocol), backs
// off 0.5 s → 10 s, and stops for good on a refusal (4400 bad request, 4401 logged out,
// 4404 no access). The WebSocket constructor is injectable so tests drive it by hand.

export interface SocketLike {
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  close(code?: number): void;
  send(data: string): void;
}

export type SocketFactory = (url: string) => SocketLike;

export type LiveState = 'connecting' | 'live' | 'reconnecting' | 'refused' | 'closed';

export interface LiveHandlers {
  /** Every server message, parsed. */
  message(msg: Record<string, unknown>): void;
  state?(state: LiveState, detail?: string): void;
}

const REFUSALS: Record<number, string> = {
  4400: 'bad request',
  4401: 'not logged in',
  4403: 'not allowed',
  4404: 'not found or no access',
};

export function wsUrl(path: string, loc: { protocol: string; host: string } = window.location): string {
  return `${loc.protocol === 'https:' ? 'wss' : 'ws'}://${loc.host}${path}`;
}

export class LiveSocket {
  private socket: SocketLike | null = null;
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private stopped = false;

  constructor(
    /** The URL for the next (re)connect: it carries the latest cursor (e.g. ?after=seq). */
    private readonly url: () => string,
    private readonly handlers: LiveHandlers,
    private readonly factory: SocketFactory = (u) => new WebSocket(u) as unknown as SocketLike,
    private readonly schedule: (fn: () => void, ms: number) => ReturnType<typeof setTimeout> = setTimeout,
  ) {}

  start(): this {
    this.stopped = false;
    this.open();
    return this;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const socket = this.socket;
    this.socket = null;
    if (socket) socket.close(1000);
    this.handlers.state?.('closed');
  }

  send(message: Record<string, unknown>): void {
    this.socket?.send(JSON.stringify(message));
  }

  /** Backoff before the n-th reconnect: 0.5 s doubling to 10 s. */
  static delay(attempt: number): number {
    return Math.min(10_000, 500 * 2 ** Math.max(0, attempt - 1));
  }

  private open(): void {
    this.handlers.state?.(this.attempt === 0 ? 'connecting' : 'reconnecting');
    const socket = this.factory(this.url());
    this.socket = socket;
    socket.onmessage = (ev) => {
      if (this.socket !== socket) return;
      let msg: unknown;
      try {
        msg = JSON.parse(String(ev.data));
      } catch {
        return;
      }
      if (!msg || typeof msg !== 'object' || Array.isArray(msg)) return;
      const rec = msg as Record<string, unknown>;
      if (rec.type === 'ready') {
        this.attempt = 0;
        this.handlers.state?.('live');
      }
      this.handlers.message(rec);
    };
    socket.onclose = (ev) => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (this.stopped) return;
      const refusal = REFUSALS[ev.code];
      if (refusal) {
        this.stopped = true;
        this.handlers.state?.('refused', refusal);
        return;
      }
      this.attempt += 1;
      this.handlers.state?.('reconnecting');
      this.timer = this.schedule(() => {
        this.timer = null;
        if (!this.stopped) this.open();
      }, LiveSocket.delay(this.attempt));
    };
    socket.onerror = () => undefined; // onclose follows
  }
}
