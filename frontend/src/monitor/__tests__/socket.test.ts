import { describe, expect, it } from 'vitest';

import { LiveSocket, wsUrl, type SocketLike } from '../socket';

class FakeSocket implements SocketLike {
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  closed: number | null = null;
  sent: string[] = [];
  constructor(readonly url: string) {}
  close(code?: number) {
    this.closed = code ?? 1000;
  }
  send(data: string) {
    this.sent.push(data);
  }
  emit(msg: unknown) {
    this.onmessage?.({ data: JSON.stringify(msg) });
  }
}

function harness() {
  const sockets: FakeSocket[] = [];
  const timers: { fn: () => void; ms: number }[] = [];
  const messages: Record<string, unknown>[] = [];
  const states: string[] = [];
  let last = 0;
  const live = new LiveSocket(
    () => `/ws/runs/1/?after=${last}`,
    { message: (m) => { messages.push(m); if (typeof m.seq === 'number') last = m.seq; }, state: (s, d) => states.push(d ? `${s}:${d}` : s) },
    (url) => {
      const s = new FakeSocket(url);
      sockets.push(s);
      return s;
    },
    (fn, ms) => {
      timers.push({ fn, ms });
      return 0 as unknown as ReturnType<typeof setTimeout>;
    },
  );
  return { live, sockets, timers, messages, states };
}

describe('LiveSocket', () => {
  it('reconnects after a drop with the last seq it has', () => {
    const h = harness();
    h.live.start();
    h.sockets[0]!.emit({ type: 'ready' });
    h.sockets[0]!.emit({ type: 'entry', seq: 1 });
    h.sockets[0]!.emit({ type: 'entry', seq: 2 });
    h.sockets[0]!.onclose!({ code: 1006 });
    expect(h.timers).toHaveLength(1);
    expect(h.timers[0]!.ms).toBe(500);
    h.timers[0]!.fn();
    expect(h.sockets[1]!.url).toBe('/ws/runs/1/?after=2');
    expect(h.states).toEqual(['connecting', 'live', 'reconnecting', 'reconnecting']);
  });

  it('backs off up to ten seconds and resets once live again', () => {
    expect([1, 2, 3, 4, 5, 6, 7].map(LiveSocket.delay)).toEqual([500, 1000, 2000, 4000, 8000, 10000, 10000]);
    const h = harness();
    h.live.start();
    h.sockets[0]!.onclose!({ code: 1006 });
    h.timers[0]!.fn();
    h.sockets[1]!.onclose!({ code: 1006 });
    expect(h.timers[1]!.ms).toBe(1000);
    h.timers[1]!.fn();
    h.sockets[2]!.emit({ type: 'ready' });
    h.sockets[2]!.onclose!({ code: 1001 });
    expect(h.timers[2]!.ms).toBe(500);
  });

  it('stops for good when refused', () => {
    const h = harness();
    h.live.start();
    h.sockets[0]!.onclose!({ code: 4404 });
    expect(h.timers).toHaveLength(0);
    expect(h.states.at(-1)).toBe('refused:not found or no access');
  });

  it('ignores a socket it has stopped and junk frames', () => {
    const h = harness();
    h.live.start();
    h.sockets[0]!.onmessage!({ data: 'not json' });
    h.live.stop();
    expect(h.sockets[0]!.closed).toBe(1000);
    h.sockets[0]!.onclose!({ code: 1006 });
    h.sockets[0]!.emit({ type: 'entry', seq: 5 });
    expect(h.timers).toHaveLength(0);
    expect(h.messages).toEqual([]);
  });

  it('builds ws and wss URLs', () => {
    expect(wsUrl('/ws/x/', { protocol: 'http:', host: 'h:1' })).toBe('ws://h:1/ws/x/');
    expect(wsUrl('/ws/x/', { protocol: 'https:', host: 'h' })).toBe('wss://h/ws/x/');
  });
});
